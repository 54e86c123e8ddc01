/*
 * A configurable C test plugin: each fixture target defines a few macros and includes this file,
 * so every refusal the loader knows has a real .so that triggers it.
 *
 * It is a rate limiter whose decision reports FIXTURE_GENERATION in `remaining`, so a caller can
 * tell which build served it. Instances are poisoned (not freed) on destroy, so a call after
 * destroy is reported instead of being undefined behaviour, and create/destroy are counted
 * through the host's counters ("fixture_created_total", "fixture_destroyed_total").
 */
#include <orion_plugin.h>
#include <stdlib.h>
#include <string.h>

#ifndef FIXTURE_ID
#define FIXTURE_ID "fixture"
#endif
#ifndef FIXTURE_VERSION
#define FIXTURE_VERSION "1.0.0"
#endif
#ifndef FIXTURE_GENERATION
#define FIXTURE_GENERATION 1
#endif
#ifndef FIXTURE_ABI_MAJOR
#define FIXTURE_ABI_MAJOR ORION_ABI_MAJOR
#endif
#ifndef FIXTURE_ABI_MINOR
#define FIXTURE_ABI_MINOR ORION_ABI_MINOR
#endif
#ifndef FIXTURE_INFO_SIZE
#define FIXTURE_INFO_SIZE sizeof(orion_plugin_info)
#endif
#ifndef FIXTURE_TOOLCHAIN
#define FIXTURE_TOOLCHAIN ""
#endif
#ifndef FIXTURE_MANIFEST
#define FIXTURE_MANIFEST                                                                          \
  "{\"capabilities\":[\"rate_limit\"],\"summary\":\"test fixture\",\"config_schema\":"            \
  "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"label\":{\"type\":"     \
  "\"string\"},\"failCreate\":{\"type\":\"boolean\"}}}}"
#endif
#ifndef FIXTURE_ENTRY
#define FIXTURE_ENTRY orion_plugin_v1_entry
#endif

#define FIXTURE_ALIVE 0x0A11BEEFu
#define FIXTURE_DEAD 0xDEADDEADu

typedef struct fixture_instance {
  unsigned magic;
  orion_host_ctx *ctx;
} fixture_instance;

static const orion_host_api *fixture_host;

static void fixture_count(orion_host_ctx *ctx, const char *name) {
  orion_str s = {name, strlen(name)};
  fixture_host->counter_add(ctx, s, 1);
}

static void fixture_error(orion_error *err, const char *message) {
  if (err == NULL) return;
  strncpy(err->message, message, ORION_ERROR_MESSAGE_CAPACITY - 1);
  err->message[ORION_ERROR_MESSAGE_CAPACITY - 1] = 0;
}

static orion_status fixture_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  *out = NULL;
  /* {"failCreate":true} makes create fail, to test that path without a schema error. */
  const char *needle = "\"failCreate\":true";
  size_t n = strlen(needle);
  for (size_t i = 0; config.ptr != NULL && i + n <= config.len; i++) {
    if (memcmp(config.ptr + i, needle, n) == 0) {
      fixture_error(err, "failCreate is set; set it to false to create an instance");
      return ORION_ERR_CONFIG;
    }
  }
  fixture_instance *instance = malloc(sizeof(fixture_instance));
  if (instance == NULL) return ORION_ERR_RESOURCE_EXHAUSTED;
  instance->magic = FIXTURE_ALIVE;
  instance->ctx = ctx;
  fixture_count(ctx, "fixture_created_total");
  *out = instance;
  return ORION_OK;
}

static void fixture_destroy(void *raw) {
  fixture_instance *instance = raw;
  if (instance->magic != FIXTURE_ALIVE) {
    fixture_count(instance->ctx, "fixture_double_destroy_total");
    return;
  }
  fixture_count(instance->ctx, "fixture_destroyed_total");
  instance->magic = FIXTURE_DEAD; /* poisoned, deliberately not freed: see the file comment */
}

static orion_status fixture_acquire(void *raw, orion_str key, int64_t cost, orion_rate_decision *out,
                                    orion_error *err) {
  (void)key;
  fixture_instance *instance = raw;
  if (instance->magic != FIXTURE_ALIVE) {
    fixture_error(err, "acquire() was called on a destroyed instance");
    return ORION_ERR_INTERNAL;
  }
  out->struct_size = sizeof(orion_rate_decision);
  out->allowed = cost <= 1000;
  out->limit = 1000;
  out->remaining = FIXTURE_GENERATION;
  out->retry_after_ns = 0;
  out->reset_ns = 0;
  out->window_ns = 1000000000;
  return ORION_OK;
}

static const orion_rate_limiter_v1 fixture_rate_limiter = {
    sizeof(orion_rate_limiter_v1),
    fixture_acquire,
};

static orion_plugin_info fixture_info;

#ifndef FIXTURE_NO_ENTRY
ORION_EXPORT const orion_plugin_info *FIXTURE_ENTRY(const orion_host_api *host) {
  fixture_host = host;
  fixture_info.struct_size = FIXTURE_INFO_SIZE;
  fixture_info.abi_major = FIXTURE_ABI_MAJOR;
  fixture_info.abi_minor = FIXTURE_ABI_MINOR;
  fixture_info.id = FIXTURE_ID;
  fixture_info.version = FIXTURE_VERSION;
  fixture_info.toolchain = FIXTURE_TOOLCHAIN;
  fixture_info.kinds = ORION_KIND_RATE_LIMITER;
  fixture_info.manifest = FIXTURE_MANIFEST;
  fixture_info.create = fixture_create;
  fixture_info.destroy = fixture_destroy;
  fixture_info.rate_limiter = &fixture_rate_limiter;
  return &fixture_info;
}
#else
/* Looks like a plugin, exports no entry symbol. */
ORION_EXPORT int fixture_not_an_entry(void) { return (int)sizeof(fixture_info) + (fixture_host != NULL); }
#endif

#ifdef FIXTURE_UNRESOLVED
/* Declared, never defined anywhere: RTLD_NOW must refuse the image. */
extern int orion_fixture_symbol_nobody_defines(void);
ORION_EXPORT int fixture_use_missing(void) { return orion_fixture_symbol_nobody_defines(); }
#endif
