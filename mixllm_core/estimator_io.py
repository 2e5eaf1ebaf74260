"""Writing and reading fitted scikit-learn estimators with skops (never pickle).

A file read here is treated as hostile until checked:

1. :func:`check_archive`: a well-formed zip of uncompressed ``.npy`` members (plus skops'
   ``schema.json``), CRCs intact, no object arrays, each member exactly the size its header says
   (no decompression or allocation bombs).
2. Every node of the skops schema must be one of :data:`TRUSTED_NODES`: the exact
   ``(loader, type)`` pairs that the estimators mixllm fits are made of. skops' own default trust
   (any scikit-learn estimator, any numpy ufunc, ...) is wider than that and is not relied on.
3. skops loads the file, trusting exactly those types (``trusted=[...]``). A file that is one
   logistic regression whose attributes are JSON values and plain arrays (the default quality
   model) is read here instead, without skops: importing skops imports every scikit-learn module
   (and torch, when it is installed), which made a saved router's first route take seconds.
   ``load_estimator(path, lazy=True)`` goes one step further and gives that logistic regression
   as :class:`LogisticArrays`: its fitted arrays, predicting with numpy, so that loading a router
   and routing with it imports neither scikit-learn nor scipy (seconds on a cold start). The
   scikit-learn object is built from the same attributes when something needs it.
4. The loaded estimator is checked structurally: finite parameters with consistent shapes,
   decision trees whose child and feature indices stay in range (scikit-learn follows them
   without bounds checks), and one prediction on a zero row. A neighbours model is rebuilt from
   its checked training points rather than trusting the search tree stored in the file.

Anything else raises :class:`CorruptStateError`; nothing in a file can run code or write files.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, CorruptStateError, MixLLMError

__all__ = [
    "TRUSTED_NODES",
    "TRUSTED_TYPES",
    "LogisticArrays",
    "check_archive",
    "dump_estimator",
    "load_estimator",
]

#: Every ``(skops loader, type)`` pair the fitted quality models (linear, knn, rf, mlp; binary and
#: fractional scores) and the tagger's classifier consist of, found by dumping each of them.
TRUSTED_NODES: frozenset[tuple[str, str]] = frozenset(
    {
        ("DictNode", "builtins.dict"),
        ("JsonNode", "builtins.str"),
        ("ListNode", "builtins.list"),
        ("TupleNode", "builtins.tuple"),
        ("TypeNode", "builtins.str"),
        ("NdArrayNode", "numpy.ndarray"),
        ("NdArrayNode", "numpy.float64"),
        ("RandomStateNode", "numpy.random.mtrand.RandomState"),
        ("ObjectNode", "sklearn.linear_model._logistic.LogisticRegression"),
        ("ObjectNode", "sklearn.neighbors._regression.KNeighborsRegressor"),
        ("ObjectNode", "sklearn.neighbors._kd_tree.KDTree"),
        ("ObjectNode", "sklearn.metrics._dist_metrics.EuclideanDistance64"),
        ("ObjectNode", "sklearn.ensemble._forest.RandomForestRegressor"),
        ("ObjectNode", "sklearn.tree._classes.DecisionTreeRegressor"),
        ("TreeNode", "sklearn.tree._tree.Tree"),
        ("ObjectNode", "sklearn.neural_network._multilayer_perceptron.MLPClassifier"),
        ("ObjectNode", "sklearn.neural_network._multilayer_perceptron.MLPRegressor"),
        ("ObjectNode", "sklearn.neural_network._stochastic_optimizers.AdamOptimizer"),
        ("ObjectNode", "sklearn.preprocessing._label.LabelBinarizer"),
    }
)
#: The type names of :data:`TRUSTED_NODES`: what ``skops.io.load`` is told to trust.
TRUSTED_TYPES: frozenset[str] = frozenset(t for _, t in TRUSTED_NODES)

_MAX_DEPTH = 64  # our estimators nest about 8 deep
_MAX_NODES = 500_000  # a 100-tree forest has about 2,000


def _corrupt(path: Path, why: str) -> CorruptStateError:
    return CorruptStateError(f"{str(path)!r} {why}")


def check_archive(path: Path) -> None:
    """Refuse a zip (``.npz`` or skops) that is not a plain, intact archive of ``.npy`` arrays.

    Raises:
        CorruptStateError: not a zip, a bad CRC, a compressed, encrypted or nested member, an
            object array, or a member whose size disagrees with its array header.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                name = info.filename
                if (
                    "/" in name
                    or "\\" in name
                    or not (name.endswith(".npy") or name == "schema.json")
                    or info.compress_type != zipfile.ZIP_STORED
                    or info.flag_bits & 0x1
                    or info.file_size != info.compress_size
                ):
                    raise _corrupt(path, f"holds a member mixllm does not read: {name!r}.")
            if sum(i.file_size for i in infos) > path.stat().st_size:
                raise _corrupt(path, "declares more data than it holds.")
            bad = archive.testzip()
            if bad is not None:
                raise _corrupt(path, f"is damaged: member {bad!r} fails its CRC check.")
            for info in infos:
                if info.filename.endswith(".npy"):
                    with archive.open(info) as f:
                        _check_npy_header(path, info, f)
    except MixLLMError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt(path, f"is not a readable archive: {exc!r}") from exc


def _check_npy_header(path: Path, info: zipfile.ZipInfo, f: Any) -> None:
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(f)
    else:
        raise _corrupt(path, f"member {info.filename!r} has .npy version {version}.")
    header = f.tell()
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if dtype.hasobject or header + size != info.file_size:
        raise _corrupt(
            path,
            f"member {info.filename!r} is not a plain array of its declared shape {shape} "
            f"({dtype}): {info.file_size - header} bytes for {size}.",
        )


def _schema_nodes(path: Path) -> set[tuple[str, str]]:
    """Every ``(loader, module.class)`` in the skops schema of ``path``."""
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[tuple[str, str]] = set()
    stack: list[tuple[Any, int]] = [(schema, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > _MAX_DEPTH or count > _MAX_NODES:
            raise _corrupt(path, "has a schema nested deeper or larger than any mixllm writes.")
        if isinstance(node, dict):
            if "__loader__" in node or "__class__" in node or "__module__" in node:
                parts = (node.get("__loader__"), node.get("__module__"), node.get("__class__"))
                if not all(isinstance(p, str) for p in parts):
                    raise _corrupt(path, f"has a schema node without a type: {parts!r}.")
                found.add((str(parts[0]), f"{parts[1]}.{parts[2]}"))
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return found


def _check_nodes(path: Path) -> None:
    """Refuse a schema with a node outside :data:`TRUSTED_NODES`."""
    bad = sorted(f"{t} (as {loader})" for loader, t in _schema_nodes(path) - TRUSTED_NODES)
    if bad:
        raise _corrupt(path, f"holds types mixllm does not load: {bad}.")


def _check_types(path: Path) -> list[str]:
    """The skops types of ``path`` that skops does not trust by default, all of them ours."""
    import skops.io as sio

    _check_nodes(path)
    untrusted = list(sio.get_untrusted_types(file=path))
    bad = sorted(set(untrusted) - TRUSTED_TYPES)
    if bad:
        raise _corrupt(path, f"holds types mixllm does not load: {bad}.")
    return untrusted


_LOGISTIC = ("ObjectNode", "sklearn.linear_model._logistic", "LogisticRegression")


def _flat_logistic(path: Path) -> LogisticArrays | None:
    """The logistic regression in ``path`` read without skops, or None when it is not one.

    Only a file whose root is a ``LogisticRegression`` with a flat dict of attributes, each a
    JSON value or a plain (non-object) numpy array, is read here; its attributes are kept as
    they are, for :meth:`LogisticArrays.to_sklearn` to build the estimator as skops builds it
    (``__new__`` then ``__setstate__``). Any other file (None) is left to skops.
    """
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
        root = schema if isinstance(schema, dict) else {}
        if tuple(root.get(k) for k in ("__loader__", "__module__", "__class__")) != _LOGISTIC:
            return None
        attrs_node = root.get("content")
        if not isinstance(attrs_node, dict) or attrs_node.get("__loader__") != "DictNode":
            return None
        nodes = attrs_node.get("content")
        if not isinstance(nodes, dict):
            return None
        attrs: dict[str, Any] = {}
        for key, node in nodes.items():
            kind = node.get("__loader__") if isinstance(node, dict) else None
            if kind == "JsonNode" and node.get("is_json") is True:
                attrs[key] = json.loads(str(node["content"]))
            elif (
                kind == "NdArrayNode"
                and node.get("type") == "numpy"
                and (node.get("__module__"), node.get("__class__")) == ("numpy", "ndarray")
            ):
                data = archive.read(str(node["file"]))  # check_archive vetted every member
                attrs[key] = np.load(io.BytesIO(data), allow_pickle=False)
            else:
                return None
    return LogisticArrays(attrs)


_LOGISTIC_TYPE = "sklearn.linear_model._logistic.LogisticRegression"


class LogisticArrays:
    """A fitted scikit-learn ``LogisticRegression`` read from a file, held as its attributes.

    It predicts as the logistic regression does, with numpy alone for two classes, and stands
    in for it until something needs the scikit-learn object: :meth:`to_sklearn` then builds it
    from these attributes (once, as skops would), importing scikit-learn only at that point.
    Attributes of the estimator (``coef_``, ``intercept_``, ``classes_``, ``C``, ...) read
    through. :func:`load_estimator` gives one for ``lazy=True``; nothing else makes them.

    Example:
        >>> est = LogisticArrays({"coef_": np.array([[2.0]]), "intercept_": np.array([0.0]),
        ...                       "classes_": np.array([0, 1]), "n_features_in_": 1})
        >>> est.predict_proba(np.array([[0.0]]))
        array([[0.5, 0.5]])
    """

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self._attrs = dict(attrs)

    def __getattr__(self, name: str) -> Any:
        attrs = self.__dict__.get("_attrs", {})
        if name.startswith("__") or name not in attrs:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return attrs[name]

    def to_sklearn(self) -> Any:
        """The ``LogisticRegression`` itself (built on the first call, the same one afterwards).

        Its arrays are these arrays, not copies.
        """
        built = self.__dict__.get("_sklearn")
        if built is None:
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression.__new__(LogisticRegression)
            est.__setstate__(dict(self._attrs))  # __setstate__ pops _sklearn_version
            # setdefault is atomic: threads racing here all get the first one stored
            built = self.__dict__.setdefault("_sklearn", est)
        return built

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``: one column per class, or a vector for two classes."""
        X = np.asarray(X)
        coef = np.asarray(self.coef_)
        if X.ndim != 2 or X.shape[1] != coef.shape[-1]:
            raise ValueError(
                f"X has shape {X.shape}; this LogisticRegression reads {coef.shape[-1]} features."
            )
        scores: np.ndarray = X @ coef.T + np.asarray(self.intercept_)
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per ``classes_``: the ``LogisticRegression``'s (for two
        classes computed here, within one rounding of its float32 ones)."""
        if len(self.classes_) != 2:  # several classes: scikit-learn's own rule
            proba: np.ndarray = self.to_sklearn().predict_proba(X)
            return proba
        scores = self.decision_function(X)  # float32 for a model fit on float32, as sklearn's
        p = (1.0 / (1.0 + np.exp(-scores.astype(np.float64)))).astype(scores.dtype)
        return np.stack([1 - p, p], axis=1)


def dump_estimator(estimator: Any, path: Path) -> None:
    """Write ``estimator`` to ``path`` in the skops format, refusing what could not be read back.

    Raises:
        ConfigError: the estimator holds a type outside :data:`TRUSTED_TYPES` (another model, or
            a scikit-learn version that stores it differently).
    """
    import skops.io as sio

    if isinstance(estimator, LogisticArrays):
        estimator = estimator.to_sklearn()
    sio.dump(estimator, path)
    try:
        _check_types(Path(path))
    except CorruptStateError as exc:
        raise ConfigError(f"mixllm could not read this estimator back: {exc}") from exc


def load_estimator(path: Path, *, lazy: bool = False) -> Any:
    """Read an estimator written by :func:`dump_estimator` (see the module docstring).

    With ``lazy=True`` a logistic regression of the common, flat form comes back as
    :class:`LogisticArrays` (scikit-learn is not imported); anything else, and everything
    without ``lazy``, as the scikit-learn estimator.

    Raises:
        CorruptStateError: the file is damaged, holds anything outside :data:`TRUSTED_NODES`,
            or the estimator in it is inconsistent.
    """
    path = Path(path)
    check_archive(path)
    try:
        _check_nodes(path)
        est: Any = _flat_logistic(path)
        if est is None:
            import skops.io as sio

            est = sio.load(path, trusted=_check_types(path))
        est = _checked(est)
        return est.to_sklearn() if isinstance(est, LogisticArrays) and not lazy else est
    except MixLLMError:
        raise
    except Exception as exc:  # skops and scikit-learn parse hostile input: any failure is ours
        raise _corrupt(path, f"is not a readable estimator: {exc!r}") from exc


def _finite(name: str, value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "fiu" or (shape is not None and a.shape != shape):
        want = "" if shape is None else f" of shape {shape}"
        raise CorruptStateError(f"{name} must be a numeric array{want}, got {a.dtype} {a.shape}.")
    if not np.isfinite(a).all():
        raise CorruptStateError(f"{name} holds NaN or infinite values.")
    return a


def _check_tree(tree: Any, n_features: int) -> None:
    """Child and feature indices in range, children after their parent (so no cycles)."""
    n = int(tree.node_count)
    if not 1 <= n <= int(tree.capacity):  # before any array is read: they are views of n nodes
        raise CorruptStateError(f"A decision tree claims {n} nodes in room for {tree.capacity}.")
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature, idx = np.asarray(tree.feature), np.arange(n)
    leaf = left == -1
    inner = ~leaf
    if (
        tree.n_features != n_features
        or left.shape != (n,)
        or right.shape != (n,)
        or feature.shape != (n,)
        or not np.array_equal(leaf, right == -1)
        or ((left[inner] <= idx[inner]) | (left[inner] >= n)).any()
        or ((right[inner] <= idx[inner]) | (right[inner] >= n)).any()
        or ((feature[inner] < 0) | (feature[inner] >= n_features)).any()
    ):
        raise CorruptStateError("A decision tree has node indices out of range.")
    _finite("A decision tree's values", tree.value)
    if np.asarray(tree.value).shape[0] != n:
        raise CorruptStateError("A decision tree has values for a different number of nodes.")


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _checked(est: Any) -> Any:
    """``est`` after the structural checks of its type (a neighbours model is rebuilt).

    Types are told apart by their full names, so checking a logistic regression imports no
    other part of scikit-learn.
    """
    d = est.n_features_in_
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise CorruptStateError(f"The estimator's n_features_in_ is {d!r}.")
    kind = _LOGISTIC_TYPE if isinstance(est, LogisticArrays) else _type_name(est)
    if kind == _LOGISTIC_TYPE:
        classes = np.asarray(est.classes_)  # labels: numbers, or the tagger's tag names
        k = 1 if len(classes) == 2 else len(classes)
        if (
            classes.ndim != 1
            or classes.dtype.kind not in "iuU"
            or len(classes) < 2
            or len(np.unique(classes)) != len(classes)
        ):
            raise CorruptStateError(f"LogisticRegression.classes_ is {classes!r}.")
        _finite("LogisticRegression.coef_", est.coef_, (k, d))
        _finite("LogisticRegression.intercept_", est.intercept_, (k,))
    elif kind == "sklearn.neighbors._regression.KNeighborsRegressor":
        from sklearn.neighbors import KNeighborsRegressor

        X = _finite("KNeighborsRegressor._fit_X", est._fit_X)
        y = _finite("KNeighborsRegressor._y", est._y, (X.shape[0],))
        k, weights = est.n_neighbors, est.weights
        if X.ndim != 2 or X.shape[1] != d or not isinstance(k, int) or not 1 <= k <= len(X):
            raise CorruptStateError(f"KNeighborsRegressor has {k!r} neighbours of {X.shape}.")
        if weights not in ("uniform", "distance"):
            raise CorruptStateError(f"KNeighborsRegressor.weights is {weights!r}.")
        est = KNeighborsRegressor(n_neighbors=k, weights=weights).fit(X, y)
    elif kind == "sklearn.ensemble._forest.RandomForestRegressor":
        trees = list(est.estimators_)
        tree_kind = "sklearn.tree._classes.DecisionTreeRegressor"
        if not trees or any(_type_name(t) != tree_kind for t in trees):
            raise CorruptStateError("RandomForestRegressor.estimators_ is not a list of trees.")
        for t in trees:
            if t.n_features_in_ != d:
                raise CorruptStateError("A tree of the forest reads another number of features.")
            _check_tree(t.tree_, d)
    elif kind in (
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
    ):
        coefs, intercepts = list(est.coefs_), list(est.intercepts_)
        sizes = [d] + [np.asarray(c).shape[-1] for c in coefs]
        if len(coefs) != len(intercepts) or len(coefs) < 1 or sizes[-1] != 1:
            raise CorruptStateError(f"The MLP has layers of sizes {sizes}.")
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            _finite(f"MLP.coefs_[{i}]", c, (sizes[i], sizes[i + 1]))
            _finite(f"MLP.intercepts_[{i}]", b, (sizes[i + 1],))
    else:
        raise CorruptStateError(f"mixllm does not load a {type(est).__name__}.")
    name = kind.rsplit(".", 1)[-1]
    probe = np.zeros((1, d), dtype=np.float32)
    out = est.predict_proba(probe) if hasattr(est, "predict_proba") else est.predict(probe)
    _finite(f"The {name}'s prediction", out)
    return est
