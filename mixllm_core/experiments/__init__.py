"""Experiments on top of the router: the benchmark (``mixllm bench``), feedback replays, the
latency simulation and the synthetic routing world. The product (``mixllm_core`` outside this
package) never imports them."""
