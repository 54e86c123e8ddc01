/*
 * A connector plugin in C for the host's delivery path: it takes every event at once, except one
 * whose payload holds "hang", which it never completes (the host's delivery deadline must free
 * the queue). Deliveries are counted through the host ("fixture_delivered_total").
 */
#include <orion_plugin.h>
#include <stdlib.h>
#include <string.h>

static const orion_host_api *connector_host;

typedef struct instance {
  orion_host_ctx *ctx;
} instance;

static int has(orion_str text, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; text.ptr != NULL && i + n <= text.len; i++) {
    if (memcmp(text.ptr + i, needle, n) == 0) return 1;
  }
  return 0;
}

static orion_status connector_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  (void)config; (void)err;
  instance *self = malloc(sizeof(instance));
  if (self == NULL) return ORION_ERR_RESOURCE_EXHAUSTED;
  self->ctx = ctx;
  *out = self;
  return ORION_OK;
}

static void connector_destroy(void *self) { free(self); }

static orion_status connector_deliver(void *self, const orion_event *event, orion_completion done, orion_error *err) {
  (void)err;
  if (has(event->payload, "hang")) return ORION_OK;
  static const char name[] = "fixture_delivered_total";
  orion_str counter = {name, sizeof name - 1};
  connector_host->counter_add(((instance *)self)->ctx, counter, 1);
  orion_str empty = {NULL, 0};
  done.complete(done.ctx, ORION_OK, empty, NULL);
  return ORION_OK;
}

static const orion_connector_v1 connector_table = {sizeof(orion_connector_v1), connector_deliver};

static const orion_plugin_info connector_info = {
    .struct_size = sizeof(orion_plugin_info),
    .abi_major = ORION_ABI_MAJOR,
    .abi_minor = ORION_ABI_MINOR,
    .id = "fixture-connector",
    .version = "1.0.0",
    .toolchain = "",
    .kinds = ORION_KIND_CONNECTOR,
    .manifest = "{\"capabilities\":[\"connectors\"],\"summary\":\"test connector\",\"config_schema\":{\"type\":\"object\"}}",
    .create = connector_create,
    .destroy = connector_destroy,
    .connector = &connector_table,
};

ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  connector_host = host;
  return &connector_info;
}
