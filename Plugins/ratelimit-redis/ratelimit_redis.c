/*
 * ratelimit-redis: GCRA over Redis, shared by every node that points at the same Redis.
 *
 * The whole decision is one Lua script run atomically by Redis (EVALSHA, EVAL after a Redis
 * restart flushed its script cache), on Redis's own clock (TIME), so nodes with skewed clocks
 * still share one limit. Semantics and decision fields match ratelimit-gcra: `limit` cost units
 * per `periodSeconds`, `limit` also the burst; times in microseconds inside Redis.
 *
 * When Redis cannot answer (down, slow past timeoutMs), `failMode` decides: "open" admits,
 * "closed" refuses with Retry-After; each such decision counts in
 * orion_plugin_redis_unavailable_total{plugin="ratelimit-redis",policy=…}. A broken connection is
 * retried at most once per reconnectMs, so a Redis outage costs requests no connect timeouts.
 *
 * Configuration (checked against the manifest's schema before create()):
 *   url            redis://[:password@]host[:port][/db]   default redis://127.0.0.1:6379/0
 *   limit          integer >= 1                            default 120
 *   periodSeconds  number > 0                              default 60
 *   keyPrefix      string                                  default "orion:rl:"
 *   timeoutMs      integer 1..60000 (connect and command)  default 100
 *   reconnectMs    integer 0..60000                        default 1000
 *   failMode       "open" | "closed"                       default "open"
 *   connections    integer 1..16                           default 4
 */
#include <orion_plugin.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNECTIONS 16

/* KEYS[1]: the key. ARGV: emission interval (µs per cost unit), tolerance (µs, = interval × limit),
 * cost. Returns {allowed, remaining, retry_after_us, reset_us}. */
static const char SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local interval = tonumber(ARGV[1])\n"
    "local tolerance = tonumber(ARGV[2])\n"
    "local cost = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or now)\n"
    "if tat < now then tat = now end\n"
    "local new_tat = tat + cost * interval\n"
    "local allow_at = new_tat - tolerance\n"
    "if now < allow_at then\n"
    "  local remaining = math.floor((tolerance - (tat - now)) / interval)\n"
    "  if remaining < 0 then remaining = 0 end\n"
    "  return {0, remaining, math.ceil(allow_at - now), math.ceil(tat - now)}\n"
    "end\n"
    "redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)\n"
    "local remaining = math.floor((tolerance - (new_tat - now)) / interval)\n"
    "if remaining < 0 then remaining = 0 end\n"
    "return {1, remaining, 0, math.ceil(new_tat - now)}\n";

typedef struct connection {
  pthread_mutex_t lock;
  redisContext *context;
  int64_t retry_at_ns; /* monotonic: no reconnect before this */
} connection;

typedef struct limiter {
  orion_host_ctx *host_ctx;
  char host[256];
  int port;
  int db;
  char password[256];
  int64_t limit;
  double period_seconds;
  char prefix[128];
  int timeout_ms;
  int reconnect_ms;
  int fail_closed;
  int connection_count;
  connection connections[MAX_CONNECTIONS];
  atomic_uint next;
  char interval_arg[64];
  char tolerance_arg[64];
  char sha[64];
  pthread_mutex_t sha_lock;
  atomic_llong warned_at_ns;
} limiter;

static const orion_host_api *host_api;

static void set_error(orion_error *err, const char *message) {
  if (err == NULL) return;
  snprintf(err->message, ORION_ERROR_MESSAGE_CAPACITY, "%s", message);
}

static void log_line(limiter *l, int32_t level, const char *message) {
  orion_str text = {message, strlen(message)};
  host_api->log(l->host_ctx, level, text);
}

static void count(limiter *l, const char *name) {
  orion_str text = {name, strlen(name)};
  host_api->counter_add(l->host_ctx, text, 1);
}

/* ---- The configuration: a flat JSON object the host already checked against the schema. ---- */

/* The value after "key": in `json`, or NULL. */
static const char *json_value(orion_str json, const char *key, size_t *rest) {
  size_t key_len = strlen(key);
  for (size_t i = 0; json.ptr != NULL && i + key_len + 2 <= json.len; i++) {
    if (json.ptr[i] != '"' || memcmp(json.ptr + i + 1, key, key_len) != 0 || json.ptr[i + 1 + key_len] != '"') continue;
    size_t j = i + key_len + 2;
    while (j < json.len && (json.ptr[j] == ' ' || json.ptr[j] == '\t' || json.ptr[j] == '\n' || json.ptr[j] == '\r')) j++;
    if (j >= json.len || json.ptr[j] != ':') continue;
    j++;
    while (j < json.len && (json.ptr[j] == ' ' || json.ptr[j] == '\t' || json.ptr[j] == '\n' || json.ptr[j] == '\r')) j++;
    *rest = json.len - j;
    return json.ptr + j;
  }
  return NULL;
}

/* A string value (without escapes: the values here are URLs, prefixes and names). */
static int json_string(orion_str json, const char *key, char *out, size_t capacity) {
  size_t rest = 0;
  const char *value = json_value(json, key, &rest);
  if (value == NULL || rest == 0 || *value != '"') return 0;
  size_t n = 0;
  for (size_t i = 1; i < rest && value[i] != '"'; i++) {
    if (value[i] == '\\' || n + 1 >= capacity) return -1;
    out[n++] = value[i];
  }
  out[n] = 0;
  return 1;
}

static int json_number(orion_str json, const char *key, double *out) {
  size_t rest = 0;
  const char *value = json_value(json, key, &rest);
  if (value == NULL || rest == 0) return 0;
  char buffer[64];
  size_t n = rest < sizeof buffer - 1 ? rest : sizeof buffer - 1;
  memcpy(buffer, value, n);
  buffer[n] = 0;
  char *end = NULL;
  *out = strtod(buffer, &end);
  return end != buffer ? 1 : -1;
}

/* redis://[:password@]host[:port][/db] */
static int parse_url(limiter *l, const char *url, orion_error *err) {
  const char *scheme = "redis://";
  if (strncmp(url, scheme, strlen(scheme)) != 0) {
    set_error(err, "'url' must look like redis://[:password@]host[:port][/db]");
    return 0;
  }
  const char *p = url + strlen(scheme);
  const char *at = strchr(p, '@');
  if (at != NULL) {
    const char *secret = *p == ':' ? p + 1 : p;
    size_t n = (size_t)(at - secret);
    if (n >= sizeof l->password) {
      set_error(err, "the password in 'url' is too long");
      return 0;
    }
    memcpy(l->password, secret, n);
    l->password[n] = 0;
    p = at + 1;
  }
  size_t host_len = strcspn(p, ":/");
  if (host_len == 0 || host_len >= sizeof l->host) {
    set_error(err, "'url' names no host (redis://host:port/db)");
    return 0;
  }
  memcpy(l->host, p, host_len);
  l->host[host_len] = 0;
  p += host_len;
  l->port = 6379;
  if (*p == ':') {
    l->port = atoi(p + 1);
    if (l->port <= 0 || l->port > 65535) {
      set_error(err, "the port in 'url' must be 1 to 65535");
      return 0;
    }
    p += 1 + strspn(p + 1, "0123456789");
  }
  l->db = 0;
  if (*p == '/') l->db = atoi(p + 1);
  return 1;
}

/* ---- Connections ---- */

static void drop(limiter *l, connection *c) {
  if (c->context != NULL) redisFree(c->context);
  c->context = NULL;
  c->retry_at_ns = host_api->monotonic_ns(l->host_ctx) + (int64_t)l->reconnect_ms * 1000000;
}

/* Connects `c` if it has no connection and its reconnect wait is over. Caller holds c->lock. */
static int ensure_connected(limiter *l, connection *c) {
  if (c->context != NULL) return 1;
  if (host_api->monotonic_ns(l->host_ctx) < c->retry_at_ns) return 0;
  struct timeval timeout = {l->timeout_ms / 1000, (l->timeout_ms % 1000) * 1000};
  c->context = redisConnectWithTimeout(l->host, l->port, timeout);
  if (c->context == NULL || c->context->err) {
    drop(l, c);
    return 0;
  }
  redisSetTimeout(c->context, timeout);
  if (l->password[0] != 0) {
    redisReply *reply = redisCommand(c->context, "AUTH %s", l->password);
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (reply) freeReplyObject(reply);
    if (!ok) {
      drop(l, c);
      return 0;
    }
  }
  if (l->db != 0) {
    redisReply *reply = redisCommand(c->context, "SELECT %d", l->db);
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (reply) freeReplyObject(reply);
    if (!ok) {
      drop(l, c);
      return 0;
    }
  }
  return 1;
}

/* Runs the script for `key` on `c`; NULL when Redis did not answer as expected. */
static redisReply *run_script(limiter *l, connection *c, const char *key, size_t key_len, long long cost) {
  char sha[64];
  pthread_mutex_lock(&l->sha_lock);
  memcpy(sha, l->sha, sizeof sha);
  pthread_mutex_unlock(&l->sha_lock);
  redisReply *reply = NULL;
  if (sha[0] != 0) {
    reply = redisCommand(c->context, "EVALSHA %s 1 %b %s %s %lld", sha, key, key_len, l->interval_arg, l->tolerance_arg, cost);
  }
  if (reply == NULL && c->context->err) return NULL;
  if (reply == NULL || (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0)) {
    /* First use, or Redis restarted and forgot the script: load it again. */
    if (reply) freeReplyObject(reply);
    redisReply *loaded = redisCommand(c->context, "SCRIPT LOAD %s", SCRIPT);
    if (loaded == NULL) return NULL;
    if (loaded->type == REDIS_REPLY_STRING && loaded->len < sizeof l->sha) {
      pthread_mutex_lock(&l->sha_lock);
      memcpy(l->sha, loaded->str, loaded->len);
      l->sha[loaded->len] = 0;
      memcpy(sha, l->sha, sizeof sha);
      pthread_mutex_unlock(&l->sha_lock);
    }
    freeReplyObject(loaded);
    reply = redisCommand(c->context, "EVALSHA %s 1 %b %s %s %lld", sha, key, key_len, l->interval_arg, l->tolerance_arg, cost);
  }
  return reply;
}

/* ---- The rate limiter table ---- */

static orion_status rl_acquire(void *instance, orion_str key, int64_t cost, orion_rate_decision *out, orion_error *err) {
  limiter *l = instance;
  if (out == NULL) {
    set_error(err, "acquire() needs a decision to fill");
    return ORION_ERR_INVALID_ARGUMENT;
  }
  if (cost < 1) {
    set_error(err, "cost must be at least 1");
    return ORION_ERR_INVALID_ARGUMENT;
  }
  size_t prefix_len = strlen(l->prefix);
  char stack_key[512];
  char *full = prefix_len + key.len <= sizeof stack_key ? stack_key : malloc(prefix_len + key.len);
  if (full == NULL) return ORION_ERR_RESOURCE_EXHAUSTED;
  memcpy(full, l->prefix, prefix_len);
  if (key.len) memcpy(full + prefix_len, key.ptr, key.len);

  long long values[4] = {0, 0, 0, 0};
  int answered = 0;
  unsigned index = atomic_fetch_add(&l->next, 1) % (unsigned)l->connection_count;
  connection *c = &l->connections[index];
  pthread_mutex_lock(&c->lock);
  /* A connection that worked before may have gone stale (Redis restarted): one fresh attempt. */
  for (int attempt = 0; attempt < 2 && !answered; attempt++) {
    int was_connected = c->context != NULL;
    if (!ensure_connected(l, c)) break;
    redisReply *reply = run_script(l, c, full, prefix_len + key.len, (long long)cost);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4) {
      answered = 1;
      for (int i = 0; i < 4; i++) values[i] = reply->element[i]->type == REDIS_REPLY_INTEGER ? reply->element[i]->integer : 0;
    }
    if (reply != NULL) freeReplyObject(reply);
    if (answered) break;
    drop(l, c);
    if (!was_connected) break;
    c->retry_at_ns = 0;
  }
  pthread_mutex_unlock(&c->lock);
  if (full != stack_key) free(full);

  out->struct_size = sizeof(orion_rate_decision);
  out->limit = l->limit;
  out->window_ns = (int64_t)(l->period_seconds * 1e9);
  if (answered) {
    out->allowed = values[0] == 1;
    out->remaining = values[1];
    out->retry_after_ns = values[2] * 1000;
    out->reset_ns = values[3] * 1000;
    return ORION_OK;
  }
  /* Redis did not answer: the configured policy decides, and says so in metrics and (once a
   * second at most) in the log. */
  count(l, l->fail_closed ? "redis_unavailable_total{policy=\"closed\"}" : "redis_unavailable_total{policy=\"open\"}");
  int64_t now = host_api->monotonic_ns(l->host_ctx);
  long long last = atomic_load(&l->warned_at_ns);
  if (now - last > 1000000000LL && atomic_compare_exchange_strong(&l->warned_at_ns, &last, now)) {
    char message[400];
    snprintf(message, sizeof message, "ratelimit-redis: Redis at %s:%d did not answer; failing %s (failMode)", l->host, l->port,
             l->fail_closed ? "closed: requests are refused" : "open: requests are admitted");
    log_line(l, ORION_LOG_WARNING, message);
  }
  if (l->fail_closed) {
    out->allowed = 0;
    out->remaining = 0;
    out->retry_after_ns = (int64_t)l->reconnect_ms * 1000000 > 0 ? (int64_t)l->reconnect_ms * 1000000 : 1000000000;
    out->reset_ns = out->retry_after_ns;
  } else {
    out->allowed = 1;
    out->remaining = l->limit;
    out->retry_after_ns = 0;
    out->reset_ns = 0;
  }
  return ORION_OK;
}

static const orion_rate_limiter_v1 rate_limiter_table = {sizeof(orion_rate_limiter_v1), rl_acquire};

/* ---- Lifecycle ---- */

static orion_status rl_create(orion_host_ctx *ctx, orion_str config, void **out, orion_error *err) {
  *out = NULL;
  limiter *l = calloc(1, sizeof(limiter));
  if (l == NULL) return ORION_ERR_RESOURCE_EXHAUSTED;
  l->host_ctx = ctx;
  char url[600] = "redis://127.0.0.1:6379/0";
  if (json_string(config, "url", url, sizeof url) < 0) {
    set_error(err, "'url' is too long or holds escapes");
    free(l);
    return ORION_ERR_CONFIG;
  }
  if (!parse_url(l, url, err)) {
    free(l);
    return ORION_ERR_CONFIG;
  }
  double number = 0;
  l->limit = json_number(config, "limit", &number) == 1 ? (int64_t)number : 120;
  l->period_seconds = json_number(config, "periodSeconds", &number) == 1 ? number : 60;
  l->timeout_ms = json_number(config, "timeoutMs", &number) == 1 ? (int)number : 100;
  l->reconnect_ms = json_number(config, "reconnectMs", &number) == 1 ? (int)number : 1000;
  l->connection_count = json_number(config, "connections", &number) == 1 ? (int)number : 4;
  if (l->limit < 1 || l->period_seconds <= 0 || l->timeout_ms < 1 || l->reconnect_ms < 0 || l->connection_count < 1 ||
      l->connection_count > MAX_CONNECTIONS) {
    set_error(err, "limit must be >= 1, periodSeconds > 0, timeoutMs >= 1, reconnectMs >= 0 and connections 1 to 16");
    free(l);
    return ORION_ERR_CONFIG;
  }
  snprintf(l->prefix, sizeof l->prefix, "orion:rl:");
  if (json_string(config, "keyPrefix", l->prefix, sizeof l->prefix) < 0) {
    set_error(err, "'keyPrefix' must be at most 127 characters without escapes");
    free(l);
    return ORION_ERR_CONFIG;
  }
  char mode[16] = "open";
  json_string(config, "failMode", mode, sizeof mode);
  if (strcmp(mode, "open") != 0 && strcmp(mode, "closed") != 0) {
    set_error(err, "'failMode' must be \"open\" (admit while Redis is down) or \"closed\" (refuse)");
    free(l);
    return ORION_ERR_CONFIG;
  }
  l->fail_closed = strcmp(mode, "closed") == 0;
  double interval_us = l->period_seconds * 1e6 / (double)l->limit;
  snprintf(l->interval_arg, sizeof l->interval_arg, "%.6f", interval_us);
  snprintf(l->tolerance_arg, sizeof l->tolerance_arg, "%.6f", interval_us * (double)l->limit);
  pthread_mutex_init(&l->sha_lock, NULL);
  for (int i = 0; i < l->connection_count; i++) pthread_mutex_init(&l->connections[i].lock, NULL);
  /* Connect one now, to say early when Redis is not there; the limiter works without it (failMode). */
  pthread_mutex_lock(&l->connections[0].lock);
  if (!ensure_connected(l, &l->connections[0])) {
    char message[400];
    snprintf(message, sizeof message, "ratelimit-redis: cannot reach Redis at %s:%d yet; failing %s until it answers", l->host, l->port,
             l->fail_closed ? "closed" : "open");
    log_line(l, ORION_LOG_WARNING, message);
  }
  pthread_mutex_unlock(&l->connections[0].lock);
  *out = l;
  return ORION_OK;
}

static void rl_destroy(void *instance) {
  limiter *l = instance;
  for (int i = 0; i < l->connection_count; i++) {
    if (l->connections[i].context != NULL) redisFree(l->connections[i].context);
    pthread_mutex_destroy(&l->connections[i].lock);
  }
  pthread_mutex_destroy(&l->sha_lock);
  free(l);
}

static const orion_plugin_info info = {
    .struct_size = sizeof(orion_plugin_info),
    .abi_major = ORION_ABI_MAJOR,
    .abi_minor = ORION_ABI_MINOR,
    .id = "ratelimit-redis",
    .version = "1.0.0",
    .toolchain = "",
    .kinds = ORION_KIND_RATE_LIMITER,
    .manifest =
        "{\"capabilities\":[\"rate_limit\",\"quota\"],"
        "\"summary\":\"GCRA rate limiter in Redis, one atomic Lua script: one limit across nodes\","
        "\"config_schema\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
        "\"url\":{\"type\":\"string\",\"minLength\":9,\"maxLength\":500},"
        "\"limit\":{\"type\":\"integer\",\"minimum\":1},"
        "\"periodSeconds\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
        "\"keyPrefix\":{\"type\":\"string\",\"maxLength\":127},"
        "\"timeoutMs\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":60000},"
        "\"reconnectMs\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":60000},"
        "\"failMode\":{\"type\":\"string\",\"enum\":[\"open\",\"closed\"]},"
        "\"connections\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":16}}}}",
    .create = rl_create,
    .destroy = rl_destroy,
    .rate_limiter = &rate_limiter_table,
};

ORION_EXPORT const orion_plugin_info *orion_plugin_v1_entry(const orion_host_api *host) {
  host_api = host;
  return &info;
}
