/*
 * orion-bench-c: the C side of `orion bench plugin-call`. A rate limiter whose acquire does the
 * same trivial arithmetic as the benchmark's direct Swift call, so the measured difference is the
 * cost of crossing the plugin boundary.
 */
#include <orion_plugin.h>
#include <stdlib.h>

static int bench_token;

static orion_status bench_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  (void)ctx; (void)config; (void)err;
  *out = &bench_token;
  return ORION_OK;
}

static void bench_destroy(void *instance) { (void)instance; }

static orion_status bench_acquire(void *instance, orion_str key, int64_t cost, orion_rate_decision *out,
                                  orion_error *err) {
  (void)instance; (void)err;
  out->allowed = cost <= (int64_t)key.len + 100;
  out->limit = 100;
  out->remaining = 100 - cost;
  out->retry_after_ns = 0;
  out->reset_ns = cost;
  out->window_ns = 1;
  return ORION_OK;
}

static const orion_rate_limiter_v1 bench_table = {sizeof(orion_rate_limiter_v1), bench_acquire};

static const orion_plugin_info bench_info = {
    .struct_size = sizeof(orion_plugin_info),
    .abi_major = ORION_ABI_MAJOR,
    .abi_minor = ORION_ABI_MINOR,
    .id = "orion-bench-c",
    .version = "1.0.0",
    .toolchain = "",
    .kinds = ORION_KIND_RATE_LIMITER,
    .manifest = "{\"capabilities\":[\"rate_limit\"],\"summary\":\"plugin-call benchmark (C)\"}",
    .create = bench_create,
    .destroy = bench_destroy,
    .rate_limiter = &bench_table,
};

ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  (void)host;
  return &bench_info;
}
