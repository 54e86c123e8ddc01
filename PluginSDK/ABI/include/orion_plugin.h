/*
 * orion_plugin.h — the Orion plugin ABI, version 1.
 *
 * This header is the whole contract between the Orion host and a plugin shared object.
 * It includes only the C standard library. A plugin in C or C++ needs nothing else.
 *
 * Naming, by symbol kind:
 *   orion_*_t-free structs/typedefs  types that cross the boundary (all plain C data);
 *   orion_*_v1 tables                functions a plugin implements (hooks), called by the host;
 *   orion_host_api                   functions the host implements (callbacks), called by plugins.
 *
 * Versioning:
 *   - ORION_ABI_MAJOR changes only when an existing type or function changes meaning or layout.
 *     The entry symbol carries the major (orion_plugin_v1_entry); the host refuses any other major.
 *   - ORION_ABI_MINOR grows when a field or function is appended at the END of a struct. Every
 *     struct starts with `struct_size`, so both sides can tell which fields the other one has.
 *     Each appended field is marked with the minor that added it. Nothing is ever removed or
 *     reordered within a major.
 *   - A plugin built against a newer minor than the host is refused (it may rely on host functions
 *     the host does not have). An older plugin is accepted: the host reads only `struct_size` bytes.
 *
 * Ownership:
 *   - orion_str and every pointer passed INTO a function are BORROWED for the duration of that call
 *     only. Copy what you need to keep.
 *   - Pointers a plugin returns from orion_plugin_v1_entry (the info, its strings and tables) must
 *     stay valid until the process exits (static storage). The host never frees them.
 *   - Output structs (orion_error, orion_search_out, ...) are allocated by the caller; the callee
 *     fills them up to their stated capacity.
 *   - An instance returned by create() is owned by the host until it passes it to destroy().
 *
 * Threading:
 *   - orion_plugin_v1_entry is called once per loaded image, on one thread, before anything else.
 *   - create() and destroy() may be called from any thread, never concurrently for the same instance.
 *   - Every other per-instance function may be called from ANY thread, CONCURRENTLY, for the same
 *     instance. A plugin protects its own state. destroy() is called only after every other call on
 *     that instance has returned.
 *   - Completion callbacks (orion_*_completion) may be invoked by the plugin from any thread, exactly
 *     once per call, possibly before the starting function returns.
 *   - Every orion_host_api function may be called from any thread at any time between entry and the
 *     destroy() of the last instance.
 *
 * Errors: fallible functions return orion_status (ORION_OK == 0) and, on failure, write a
 * NUL-terminated, human-readable message into the caller's orion_error. The message should say
 * what was wrong and how to fix it. Never write secrets or user content into it.
 */
#ifndef ORION_PLUGIN_H
#define ORION_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ORION_ABI_MAJOR 1
#define ORION_ABI_MINOR 1

/* The one symbol every plugin exports. Its name carries the ABI major. */
#define ORION_PLUGIN_ENTRY_SYMBOL "orion_plugin_v1_entry"

#if defined(_WIN32)
#define ORION_EXPORT __declspec(dllexport)
#else
#define ORION_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------------------------
 * Basic types
 * ------------------------------------------------------------------------------------------- */

/* A byte string: UTF-8 text unless stated otherwise. Not NUL-terminated. BORROWED. */
typedef struct orion_str {
  const char *ptr; /* may be NULL when len == 0 */
  size_t len;
} orion_str;

/* A key/value pair of byte strings. BORROWED. */
typedef struct orion_kv {
  orion_str key;
  orion_str value;
} orion_kv;

typedef int32_t orion_status;

/* Status codes. Plugins may return any of these; the host maps them to its own errors. */
#define ORION_OK 0
#define ORION_ERR_INVALID_ARGUMENT 1 /* the caller's input is wrong; the message says which part */
#define ORION_ERR_NOT_FOUND 2        /* a named thing (model, instance, document) does not exist */
#define ORION_ERR_UNAVAILABLE 3      /* a dependency is down or not ready; retrying may help */
#define ORION_ERR_UNSUPPORTED 4      /* this instance does not offer the requested operation */
#define ORION_ERR_RESOURCE_EXHAUSTED 5 /* capacity, memory or quota ran out */
#define ORION_ERR_CANCELLED 6        /* the call was cancelled */
#define ORION_ERR_DEADLINE 7         /* a timeout elapsed */
#define ORION_ERR_CONFIG 8           /* create(): the configuration is invalid */
#define ORION_ERR_INTERNAL 9         /* a bug or unexpected state inside the plugin */

#define ORION_ERROR_MESSAGE_CAPACITY 512

/* Caller-allocated error out-parameter. The callee writes a NUL-terminated message of at most
 * ORION_ERROR_MESSAGE_CAPACITY - 1 bytes (truncating if needed). */
typedef struct orion_error {
  uint32_t struct_size;
  char message[ORION_ERROR_MESSAGE_CAPACITY];
} orion_error;

/* Log levels for orion_host_api.log. */
#define ORION_LOG_TRACE 0
#define ORION_LOG_DEBUG 1
#define ORION_LOG_INFO 2
#define ORION_LOG_NOTICE 3
#define ORION_LOG_WARNING 4
#define ORION_LOG_ERROR 5

/* Plugin kinds (bit flags in orion_plugin_info.kinds). */
#define ORION_KIND_RETRIEVER (1u << 0)
#define ORION_KIND_RATE_LIMITER (1u << 1)
#define ORION_KIND_ENGINE (1u << 2)
#define ORION_KIND_PRICING (1u << 3)
#define ORION_KIND_CONNECTOR (1u << 4)
#define ORION_KIND_TOOL (1u << 5)      /* ABI 1.1 */

/* Opaque per-instance handle the host gives to create(); pass it back to every host call made on
 * behalf of that instance, so logs and metrics carry the instance id. */
typedef struct orion_host_ctx orion_host_ctx;

/* ---------------------------------------------------------------------------------------------
 * Retriever
 * ------------------------------------------------------------------------------------------- */

/* One document to index. Everything is BORROWED for the duration of add(). */
typedef struct orion_document {
  uint32_t struct_size;
  int64_t id;                 /* the host's document key, unique per namespace and stable */
  orion_str ns;               /* tenant namespace, e.g. "tenant_acme" */
  const orion_kv *fields;     /* text fields, e.g. {"title", ...}, {"text", ...} */
  size_t field_count;
  const orion_kv *metadata;   /* flattened metadata, values as text; used by equality filters */
  size_t metadata_count;
  const float *vector;        /* NULL when the document carries no vector */
  uint32_t dimensions;        /* 0 when vector is NULL */
} orion_document;

/* A search request. BORROWED for the duration of search(). */
typedef struct orion_query {
  uint32_t struct_size;
  orion_str ns;               /* only documents of this namespace may be returned */
  orion_str text;             /* user text; may be empty for vector-only search */
  const float *vector;        /* NULL when no query vector is available */
  uint32_t dimensions;
  uint32_t top_k;             /* wanted results; out->hit_capacity >= top_k */
  const orion_kv *filters;    /* metadata equality filters, ANDed; applied before ranking */
  size_t filter_count;
} orion_query;

/* Source tags for orion_hit.source. */
#define ORION_SOURCE_VECTOR 1u
#define ORION_SOURCE_FTS 2u
#define ORION_SOURCE_HYBRID 3u

/* One source's contribution to a fused hit (hybrid retrievers). */
typedef struct orion_hit_source {
  uint32_t source_index;      /* position of the source in the fusing plugin's configuration */
  uint32_t rank;              /* 1-based rank inside that source's list; 0 = not in that list */
  float score;                /* that source's own score */
  uint32_t source;            /* that source's tag (ORION_SOURCE_*) */
} orion_hit_source;

typedef struct orion_hit {
  int64_t id;                 /* document key as given to add() */
  float score;                /* higher is better */
  uint32_t source;            /* ORION_SOURCE_* */
  uint32_t detail_offset;     /* index of this hit's first entry in out->details */
  uint32_t detail_count;      /* number of entries; 0 for single-source retrievers */
} orion_hit;

#define ORION_SEARCH_DEGRADED 1u /* some source could not answer; see degraded_reason */

/* Caller-allocated search results. The callee writes up to hit_capacity hits, best first, and sets
 * hit_count; likewise details. */
typedef struct orion_search_out {
  uint32_t struct_size;
  orion_hit *hits;
  uint32_t hit_capacity;
  uint32_t hit_count;
  orion_hit_source *details;
  uint32_t detail_capacity;
  uint32_t detail_count;
  uint32_t flags;             /* ORION_SEARCH_* */
  char degraded_reason[256];  /* NUL-terminated when ORION_SEARCH_DEGRADED is set */
} orion_search_out;

typedef struct orion_retriever_stats {
  uint32_t struct_size;
  uint64_t document_count;    /* documents indexed, all namespaces */
  uint64_t checkpoint;        /* last value given to checkpoint(), persisted if the plugin persists */
} orion_retriever_stats;

typedef struct orion_retriever_v1 {
  uint32_t struct_size;
  /* Index (or replace, by id and namespace) a batch of documents. Any thread, concurrent. */
  orion_status (*add)(void *instance, const orion_document *docs, size_t count, orion_error *err);
  /* Remove documents by id from one namespace. Unknown ids are ignored. Any thread, concurrent. */
  orion_status (*remove)(void *instance, orion_str ns, const int64_t *ids, size_t count,
                         orion_error *err);
  /* Search one namespace. Any thread, concurrent. */
  orion_status (*search)(void *instance, const orion_query *query, orion_search_out *out,
                         orion_error *err);
  /* Drop every document (all namespaces). Used before a rebuild from the host's store. */
  orion_status (*clear)(void *instance, orion_error *err);
  /* Record that the index reflects the host's store up to `checkpoint`; persist it if the plugin
   * persists its index, so a restart can tell a stale index from a current one. */
  orion_status (*checkpoint)(void *instance, uint64_t checkpoint, orion_error *err);
  orion_status (*stats)(void *instance, orion_retriever_stats *out, orion_error *err);
} orion_retriever_v1;

/* ---------------------------------------------------------------------------------------------
 * Rate limiter
 * ------------------------------------------------------------------------------------------- */

typedef struct orion_rate_decision {
  uint32_t struct_size;
  int32_t allowed;            /* 1 admitted, 0 refused */
  int64_t limit;              /* the policy's burst capacity, in cost units */
  int64_t remaining;          /* cost units that could still be admitted right now */
  int64_t retry_after_ns;     /* when refused: wait at least this long; 0 when allowed */
  int64_t reset_ns;           /* time until the key is back to full capacity */
  int64_t window_ns;          /* the policy's window (for RateLimit-Policy) */
} orion_rate_decision;

typedef struct orion_rate_limiter_v1 {
  uint32_t struct_size;
  /* Admit or refuse `cost` units for `key`. Any thread, concurrent. cost >= 1. */
  orion_status (*acquire)(void *instance, orion_str key, int64_t cost, orion_rate_decision *out,
                          orion_error *err);
} orion_rate_limiter_v1;

/* ---------------------------------------------------------------------------------------------
 * Engine (LLM chat and embeddings). Slow work completes through a callback.
 * ------------------------------------------------------------------------------------------- */

/* Completion of a unary call. `body` is JSON (chat: an OpenAI-style chat.completion object),
 * BORROWED for the callback's duration. On failure status != ORION_OK and message says why. */
typedef struct orion_completion {
  void *ctx;
  void (*complete)(void *ctx, orion_status status, orion_str body, const char *message);
} orion_completion;

/* Streaming: chunk() is called zero or more times (each an OpenAI-style chat.completion.chunk
 * JSON object), then complete() exactly once. chunk() returns 0 to continue, non-zero to ask the
 * plugin to stop (the client went away); complete() still follows. Calls for one stream are never
 * concurrent with each other. */
typedef struct orion_stream {
  void *ctx;
  int32_t (*chunk)(void *ctx, orion_str chunk);
  void (*complete)(void *ctx, orion_status status, orion_str final_usage, const char *message);
} orion_stream;

/* Embedding completion: `vectors` holds count * dimensions floats, row-major, BORROWED. */
typedef struct orion_embed_completion {
  void *ctx;
  void (*complete)(void *ctx, orion_status status, const float *vectors, size_t count,
                   uint32_t dimensions, orion_str usage, const char *message);
} orion_embed_completion;

typedef struct orion_engine_v1 {
  uint32_t struct_size;
  /* request: OpenAI-style chat request JSON. Returns ORION_OK if the call was started; then
   * `done` is invoked exactly once. On a non-OK return `done` is never invoked. */
  orion_status (*chat)(void *instance, orion_str request, orion_completion done, orion_error *err);
  orion_status (*chat_stream)(void *instance, orion_str request, orion_stream stream,
                              orion_error *err);
  /* texts: `count` strings; model: may be empty for the instance's default. */
  orion_status (*embed)(void *instance, orion_str model, const orion_str *texts, size_t count,
                        orion_embed_completion done, orion_error *err);
} orion_engine_v1;

/* ---------------------------------------------------------------------------------------------
 * Pricing
 * ------------------------------------------------------------------------------------------- */

/* Prices in nano-USD per one million tokens (1 USD = 1e9). -1 means "not priced". */
typedef struct orion_price {
  uint32_t struct_size;
  int64_t input_per_million;
  int64_t output_per_million;
  int64_t cache_read_per_million;
  int64_t cache_write_per_million;
} orion_price;

typedef struct orion_pricing_v1 {
  uint32_t struct_size;
  /* ORION_ERR_NOT_FOUND for an unknown model. Any thread, concurrent. */
  orion_status (*price)(void *instance, orion_str model, orion_price *out, orion_error *err);
} orion_pricing_v1;

/* ---------------------------------------------------------------------------------------------
 * Connector (run lifecycle events)
 * ------------------------------------------------------------------------------------------- */

typedef struct orion_event {
  uint32_t struct_size;
  orion_str type;             /* "run_started", "run_completed", ... */
  orion_str tenant_id;
  orion_str workspace_id;
  orion_str run_id;
  int64_t timestamp_ns;       /* Unix epoch */
  uint64_t sequence;          /* per-run order */
  orion_str payload;          /* JSON object */
} orion_event;

typedef struct orion_connector_v1 {
  uint32_t struct_size;
  /* Starts delivery; `done` is invoked exactly once (body unused). Events of one run are handed
   * over in order, one at a time. */
  orion_status (*deliver)(void *instance, const orion_event *event, orion_completion done,
                          orion_error *err);
} orion_connector_v1;

/* ---------------------------------------------------------------------------------------------
 * Tool (ABI 1.1): one named operation agents may call, described by the manifest's "tool" object:
 *   {"tool": {"name": "memory_search", "description": "...", "input_schema": {JSON Schema},
 *             "output_schema": {JSON Schema}}}
 * name: [a-z0-9_-]+, unique within a tier. The host validates the input against input_schema
 * before call() and the output against output_schema after it.
 * ------------------------------------------------------------------------------------------- */

typedef struct orion_tool_call {
  uint32_t struct_size;
  orion_str tenant_id;        /* the tenant the call acts for */
  orion_str workspace_id;
  orion_str user_id;
  orion_str run_id;           /* the run the call is recorded in */
  orion_str input;            /* JSON, valid against the tool's input_schema */
  const void *scope;          /* pass to orion_host_api.service_call; valid until done is invoked */
} orion_tool_call;

typedef struct orion_tool_v1 {
  uint32_t struct_size;
  /* Runs the tool; `done` is invoked exactly once with the output JSON as body. Any thread,
   * concurrent. */
  orion_status (*call)(void *instance, const orion_tool_call *call, orion_completion done, orion_error *err);
} orion_tool_v1;

/* ---------------------------------------------------------------------------------------------
 * Host API (implemented by the host, called by plugins)
 * ------------------------------------------------------------------------------------------- */

typedef struct orion_http_header {
  orion_str name;
  orion_str value;
} orion_http_header;

typedef struct orion_http_request {
  uint32_t struct_size;
  orion_str method;
  orion_str url;
  const orion_http_header *headers;
  size_t header_count;
  orion_str body;
  int64_t timeout_ns;          /* 0 = host default */
} orion_http_request;

/* HTTP response delivery: head() once, body() zero or more times, complete() exactly once. */
typedef struct orion_http_response_handler {
  void *ctx;
  void (*head)(void *ctx, int32_t status, const orion_http_header *headers, size_t count);
  int32_t (*body)(void *ctx, orion_str chunk); /* return non-zero to abort the transfer */
  void (*complete)(void *ctx, orion_status status, const char *message);
} orion_http_response_handler;

/* A leased reference to another instance, from registry_acquire. Valid until registry_release. */
typedef struct orion_instance_ref {
  uint32_t struct_size;
  void *instance;
  uint32_t kind;               /* the ORION_KIND_* that was asked for */
  const void *table;           /* const orion_<kind>_v1 * matching `kind` */
  void *lease;                 /* host-owned; pass back to registry_release */
} orion_instance_ref;

typedef struct orion_host_api {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  /* Log a message. message is BORROWED. Any thread. */
  void (*log)(orion_host_ctx *ctx, int32_t level, orion_str message);
  /* Add `delta` to counter `name` (Prometheus-valid, e.g. "plugin_cache_hits_total"). */
  void (*counter_add)(orion_host_ctx *ctx, orion_str name, int64_t delta);
  /* Record one observation for histogram `name` (seconds for durations). */
  void (*histogram_record)(orion_host_ctx *ctx, orion_str name, double value);
  /* Wall clock, nanoseconds since the Unix epoch. */
  int64_t (*now_ns)(orion_host_ctx *ctx);
  /* Monotonic clock in nanoseconds; only differences are meaningful. Tests may drive it. */
  int64_t (*monotonic_ns)(orion_host_ctx *ctx);
  /* Outbound HTTP through the host (timeouts, TLS, pooling, egress allowlist). Returns ORION_OK
   * if started; then the handler is driven to complete(), from any thread. ORION_ERR_CONFIG when
   * the URL's host is not in the deployment's egress allowlist; ORION_ERR_UNSUPPORTED from a host
   * without HTTP egress. */
  orion_status (*http_request)(orion_host_ctx *ctx, const orion_http_request *request,
                               orion_http_response_handler handler, orion_error *err);
  /* Lease the current instance `instance_id` of `kind` (one ORION_KIND_*). Hold it only for the
   * duration of one operation: a swapped-out instance is destroyed after its last lease ends. */
  orion_status (*registry_acquire)(orion_host_ctx *ctx, uint32_t kind, orion_str instance_id,
                                   orion_instance_ref *out, orion_error *err);
  void (*registry_release)(orion_host_ctx *ctx, orion_instance_ref *ref);
  /* (1.1) Calls host service `service` (e.g. "memory.search") with `request` (JSON) on behalf of
   * the tool call whose `scope` is given: the host acts for that call's tenant only. Returns
   * ORION_OK if started; then `done` gets the response JSON. ORION_ERR_NOT_FOUND for an unknown
   * service, ORION_ERR_INVALID_ARGUMENT for a scope that is not a call in progress. Read
   * struct_size before calling: a 1.0 host does not have it. */
  orion_status (*service_call)(orion_host_ctx *ctx, const void *scope, orion_str service, orion_str request,
                               orion_completion done, orion_error *err);
} orion_host_api;

/* ---------------------------------------------------------------------------------------------
 * Plugin info and lifecycle
 * ------------------------------------------------------------------------------------------- */

typedef struct orion_plugin_info {
  uint32_t struct_size;
  uint16_t abi_major;          /* ORION_ABI_MAJOR the plugin was built against */
  uint16_t abi_minor;          /* ORION_ABI_MINOR the plugin was built against */
  const char *id;              /* NUL-terminated, e.g. "ratelimit-gcra"; [a-z0-9-]+ */
  const char *version;         /* NUL-terminated semantic version */
  const char *toolchain;       /* "swift-6.3.1" for Swift plugins; "" or NULL for C/C++ */
  uint32_t kinds;              /* ORION_KIND_* bit set */
  /* JSON object: {"capabilities": [...], "config_schema": {JSON Schema subset}, ...}. */
  const char *manifest;
  /* Create an instance from `config` (a JSON object). On failure return non-OK, set *out to NULL
   * and explain in err (ORION_ERR_CONFIG for a rejected configuration). */
  orion_status (*create)(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err);
  /* Release everything the instance holds. Called once, after all other calls on it returned. */
  void (*destroy)(void *instance);
  /* One table per kind in `kinds`; NULL for kinds not provided. */
  const orion_retriever_v1 *retriever;
  const orion_rate_limiter_v1 *rate_limiter;
  const orion_engine_v1 *engine;
  const orion_pricing_v1 *pricing;
  const orion_connector_v1 *connector;
  const orion_tool_v1 *tool;   /* 1.1; read only when struct_size covers it */
} orion_plugin_info;

/* The entry point. Called once per loaded image. `host` stays valid for the life of the process.
 * Returns NULL if the plugin cannot run with this host (it should log why through host->log). */
typedef const orion_plugin_info *(*orion_plugin_v1_entry_fn)(const orion_host_api *host);

#ifdef __cplusplus
}
#endif

#endif /* ORION_PLUGIN_H */
