/*
 * A tool plugin in C for the host's tool-call path: its input's "mode" picks what it does.
 *   echo        answers {"ok": true}
 *   fail        fails with ORION_ERR_UNAVAILABLE
 *   refuse      fails with ORION_ERR_INVALID_ARGUMENT (the caller's fault)
 *   hang        never completes (the host's deadline must answer the caller)
 *   bad_output  answers {"ok": "yes"}, outside its output schema
 */
#include <orion_plugin.h>
#include <stdlib.h>
#include <string.h>

static const orion_host_api *tool_host;

static int has(orion_str text, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; text.ptr != NULL && i + n <= text.len; i++) {
    if (memcmp(text.ptr + i, needle, n) == 0) return 1;
  }
  return 0;
}

static orion_status tool_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  (void)ctx; (void)config; (void)err;
  *out = malloc(1);
  return *out == NULL ? ORION_ERR_RESOURCE_EXHAUSTED : ORION_OK;
}

static void tool_destroy(void *instance) { free(instance); }

static orion_status tool_call(void *instance, const orion_tool_call *call, orion_completion done, orion_error *err) {
  (void)instance; (void)err;
  static const char ok[] = "{\"ok\":true}";
  static const char bad[] = "{\"ok\":\"yes\"}";
  orion_str empty = {NULL, 0};
  if (has(call->input, "\"hang\"")) return ORION_OK;
  if (has(call->input, "\"fail\"")) {
    done.complete(done.ctx, ORION_ERR_UNAVAILABLE, empty, "the fixture tool was told to fail");
  } else if (has(call->input, "\"refuse\"")) {
    done.complete(done.ctx, ORION_ERR_INVALID_ARGUMENT, empty, "the fixture tool refuses this input");
  } else if (has(call->input, "\"bad_output\"")) {
    orion_str body = {bad, sizeof bad - 1};
    done.complete(done.ctx, ORION_OK, body, NULL);
  } else {
    orion_str body = {ok, sizeof ok - 1};
    done.complete(done.ctx, ORION_OK, body, NULL);
  }
  return ORION_OK;
}

static const orion_tool_v1 tool_table = {sizeof(orion_tool_v1), tool_call};

static const orion_plugin_info tool_info = {
    .struct_size = sizeof(orion_plugin_info),
    .abi_major = ORION_ABI_MAJOR,
    .abi_minor = ORION_ABI_MINOR,
    .id = "fixture-tool",
    .version = "1.0.0",
    .toolchain = "",
    .kinds = ORION_KIND_TOOL,
    .manifest = "{\"capabilities\":[\"tools\"],\"summary\":\"test tool\",\"config_schema\":{\"type\":\"object\"},"
                "\"tool\":{\"name\":\"fixture_tool\",\"description\":\"does what its mode says\","
                "\"input_schema\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"mode\"],\"properties\":"
                "{\"mode\":{\"type\":\"string\",\"enum\":[\"echo\",\"fail\",\"refuse\",\"hang\",\"bad_output\"]}}},"
                "\"output_schema\":{\"type\":\"object\",\"required\":[\"ok\"],\"properties\":{\"ok\":{\"type\":\"boolean\"}}}}}",
    .create = tool_create,
    .destroy = tool_destroy,
    .tool = &tool_table,
};

ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  tool_host = host;
  return &tool_info;
}
