#include "orion_ort.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The C API is requested at version 5: every entry used below exists from it on, and the table
 * only grows at its end, so a newer runtime serves the same positions. */
#define ORION_ORT_API_VERSION 5

/* Positions in OrtApi (onnxruntime_c_api.h), zero-based. */
enum {
  SLOT_CREATE_STATUS = 0,
  SLOT_GET_ERROR_CODE = 1,
  SLOT_GET_ERROR_MESSAGE = 2,
  SLOT_CREATE_ENV = 3,
  SLOT_CREATE_SESSION = 7,
  SLOT_RUN = 9,
  SLOT_CREATE_SESSION_OPTIONS = 10,
  SLOT_SET_SESSION_EXECUTION_MODE = 13,
  SLOT_SET_GRAPH_OPTIMIZATION_LEVEL = 23,
  SLOT_SET_INTRA_OP_THREADS = 24,
  SLOT_SET_INTER_OP_THREADS = 25,
  SLOT_SESSION_GET_INPUT_COUNT = 30,
  SLOT_SESSION_GET_OUTPUT_COUNT = 31,
  SLOT_SESSION_GET_INPUT_NAME = 36,
  SLOT_SESSION_GET_OUTPUT_NAME = 37,
  SLOT_CREATE_TENSOR_WITH_DATA = 49,
  SLOT_GET_TENSOR_MUTABLE_DATA = 51,
  SLOT_GET_TENSOR_ELEMENT_TYPE = 60,
  SLOT_GET_DIMENSIONS_COUNT = 61,
  SLOT_GET_DIMENSIONS = 62,
  SLOT_GET_TENSOR_TYPE_AND_SHAPE = 65,
  SLOT_CREATE_CPU_MEMORY_INFO = 69,
  SLOT_ALLOCATOR_FREE = 76,
  SLOT_GET_DEFAULT_ALLOCATOR = 78,
  SLOT_RELEASE_ENV = 92,
  SLOT_RELEASE_STATUS = 93,
  SLOT_RELEASE_MEMORY_INFO = 94,
  SLOT_RELEASE_SESSION = 95,
  SLOT_RELEASE_VALUE = 96,
  SLOT_RELEASE_TENSOR_TYPE_AND_SHAPE = 99,
  SLOT_RELEASE_SESSION_OPTIONS = 100,
  SLOT_ADD_SESSION_CONFIG_ENTRY = 130,
};

/* Enumerations, by value. */
enum { ORT_INVALID_ARGUMENT = 2 };
enum { ORT_LOGGING_LEVEL_ERROR = 3 };
enum { ORT_SEQUENTIAL = 0 };
enum { ORT_ENABLE_ALL = 99 };
enum { ELEMENT_FLOAT = 1, ELEMENT_INT64 = 7 };
enum { ORT_DEVICE_ALLOCATOR = 0 };
enum { ORT_MEM_TYPE_DEFAULT = 0 };

typedef void status_t;
typedef struct api_base {
  const void *(*get_api)(uint32_t version);
  const char *(*get_version_string)(void);
} api_base;

/* The entries used, typed. Every OrtStatus* is NULL on success. */
static struct {
  status_t *(*create_status)(int code, const char *message);
  int (*get_error_code)(const status_t *status);
  const char *(*get_error_message)(const status_t *status);
  status_t *(*create_env)(int level, const char *log_id, void **out);
  status_t *(*create_session)(const void *env, const char *path, const void *options, void **out);
  status_t *(*run)(void *session, const void *run_options, const char *const *input_names,
                   const void *const *inputs, size_t input_count, const char *const *output_names,
                   size_t output_count, void **outputs);
  status_t *(*create_session_options)(void **out);
  status_t *(*set_execution_mode)(void *options, int mode);
  status_t *(*set_optimization_level)(void *options, int level);
  status_t *(*set_intra_op_threads)(void *options, int threads);
  status_t *(*set_inter_op_threads)(void *options, int threads);
  status_t *(*session_input_count)(const void *session, size_t *out);
  status_t *(*session_output_count)(const void *session, size_t *out);
  status_t *(*session_input_name)(const void *session, size_t index, void *allocator, char **out);
  status_t *(*session_output_name)(const void *session, size_t index, void *allocator, char **out);
  status_t *(*create_tensor_with_data)(const void *memory_info, void *data, size_t bytes, const int64_t *shape,
                                       size_t rank, int element_type, void **out);
  status_t *(*tensor_mutable_data)(void *value, void **out);
  status_t *(*tensor_element_type)(const void *info, int *out);
  status_t *(*dimensions_count)(const void *info, size_t *out);
  status_t *(*dimensions)(const void *info, int64_t *values, size_t count);
  status_t *(*tensor_type_and_shape)(const void *value, void **out);
  status_t *(*create_cpu_memory_info)(int allocator_type, int memory_type, void **out);
  status_t *(*allocator_free)(void *allocator, void *pointer);
  status_t *(*default_allocator)(void **out);
  void (*release_env)(void *env);
  void (*release_status)(status_t *status);
  void (*release_memory_info)(void *info);
  void (*release_session)(void *session);
  void (*release_value)(void *value);
  void (*release_tensor_type_and_shape)(void *info);
  void (*release_session_options)(void *options);
  status_t *(*add_session_config_entry)(void *options, const char *key, const char *value);
} ort;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static char loaded_path[PATH_MAX];
static char version[64];
static void *environment;
static void *cpu_memory;

struct orion_ort_session {
  void *session;
  int token_types;
  char output_name[256];
};

static void fail(char *error, size_t size, const char *format, ...) {
  if (!error || size == 0) return;
  va_list args;
  va_start(args, format);
  vsnprintf(error, size, format, args);
  va_end(args);
}

/* Copies a failed status's message into `error` and releases the status. Returns 1 on failure. */
static int failed(status_t *status, const char *what, char *error, size_t size) {
  if (!status) return 0;
  fail(error, size, "%s: %s", what, ort.get_error_message(status));
  ort.release_status(status);
  return 1;
}

/* For calls whose failure changes nothing for the caller (freeing a name): drop the status. */
static void release_quietly(status_t *status) {
  if (status) ort.release_status(status);
}

#define SLOT(table, index) (((void *const *)(table))[index])

static void bind(const void *table) {
  /* Each assignment reads one slot; the casts document the entry's type above. */
  *(void **)&ort.create_status = SLOT(table, SLOT_CREATE_STATUS);
  *(void **)&ort.get_error_code = SLOT(table, SLOT_GET_ERROR_CODE);
  *(void **)&ort.get_error_message = SLOT(table, SLOT_GET_ERROR_MESSAGE);
  *(void **)&ort.create_env = SLOT(table, SLOT_CREATE_ENV);
  *(void **)&ort.create_session = SLOT(table, SLOT_CREATE_SESSION);
  *(void **)&ort.run = SLOT(table, SLOT_RUN);
  *(void **)&ort.create_session_options = SLOT(table, SLOT_CREATE_SESSION_OPTIONS);
  *(void **)&ort.set_execution_mode = SLOT(table, SLOT_SET_SESSION_EXECUTION_MODE);
  *(void **)&ort.set_optimization_level = SLOT(table, SLOT_SET_GRAPH_OPTIMIZATION_LEVEL);
  *(void **)&ort.set_intra_op_threads = SLOT(table, SLOT_SET_INTRA_OP_THREADS);
  *(void **)&ort.set_inter_op_threads = SLOT(table, SLOT_SET_INTER_OP_THREADS);
  *(void **)&ort.session_input_count = SLOT(table, SLOT_SESSION_GET_INPUT_COUNT);
  *(void **)&ort.session_output_count = SLOT(table, SLOT_SESSION_GET_OUTPUT_COUNT);
  *(void **)&ort.session_input_name = SLOT(table, SLOT_SESSION_GET_INPUT_NAME);
  *(void **)&ort.session_output_name = SLOT(table, SLOT_SESSION_GET_OUTPUT_NAME);
  *(void **)&ort.create_tensor_with_data = SLOT(table, SLOT_CREATE_TENSOR_WITH_DATA);
  *(void **)&ort.tensor_mutable_data = SLOT(table, SLOT_GET_TENSOR_MUTABLE_DATA);
  *(void **)&ort.tensor_element_type = SLOT(table, SLOT_GET_TENSOR_ELEMENT_TYPE);
  *(void **)&ort.dimensions_count = SLOT(table, SLOT_GET_DIMENSIONS_COUNT);
  *(void **)&ort.dimensions = SLOT(table, SLOT_GET_DIMENSIONS);
  *(void **)&ort.tensor_type_and_shape = SLOT(table, SLOT_GET_TENSOR_TYPE_AND_SHAPE);
  *(void **)&ort.create_cpu_memory_info = SLOT(table, SLOT_CREATE_CPU_MEMORY_INFO);
  *(void **)&ort.allocator_free = SLOT(table, SLOT_ALLOCATOR_FREE);
  *(void **)&ort.default_allocator = SLOT(table, SLOT_GET_DEFAULT_ALLOCATOR);
  *(void **)&ort.release_env = SLOT(table, SLOT_RELEASE_ENV);
  *(void **)&ort.release_status = SLOT(table, SLOT_RELEASE_STATUS);
  *(void **)&ort.release_memory_info = SLOT(table, SLOT_RELEASE_MEMORY_INFO);
  *(void **)&ort.release_session = SLOT(table, SLOT_RELEASE_SESSION);
  *(void **)&ort.release_value = SLOT(table, SLOT_RELEASE_VALUE);
  *(void **)&ort.release_tensor_type_and_shape = SLOT(table, SLOT_RELEASE_TENSOR_TYPE_AND_SHAPE);
  *(void **)&ort.release_session_options = SLOT(table, SLOT_RELEASE_SESSION_OPTIONS);
  *(void **)&ort.add_session_config_entry = SLOT(table, SLOT_ADD_SESSION_CONFIG_ENTRY);
}

/* A status made and read back through the table: wrong positions would not give the same code
 * and message back. */
static int self_check(char *error, size_t size) {
  static const char probe[] = "orion self-check";
  status_t *status = ort.create_status(ORT_INVALID_ARGUMENT, probe);
  if (!status) {
    fail(error, size, "the runtime's API table failed its self-check (CreateStatus returned nothing)");
    return 1;
  }
  int code = ort.get_error_code(status);
  const char *message = ort.get_error_message(status);
  int ok = code == ORT_INVALID_ARGUMENT && message && strcmp(message, probe) == 0;
  ort.release_status(status);
  if (!ok) {
    fail(error, size, "the runtime's API table failed its self-check (a status did not read back as written)");
    return 1;
  }
  return 0;
}

static int load_locked(const char *path, char *error, size_t size) {
  if (path[0] != '/') {
    fail(error, size, "the runtime library path '%s' is not absolute", path);
    return 1;
  }
  char canonical[PATH_MAX];
  if (!realpath(path, canonical)) {
    fail(error, size, "cannot resolve the runtime library path '%s'", path);
    return 1;
  }
  if (environment && strcmp(canonical, loaded_path) == 0) return 0;
  /* Never closed: the runtime keeps threads and global state for the life of the process. */
  void *library = dlopen(canonical, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    fail(error, size, "cannot load ONNX Runtime from '%s': %s", canonical, dlerror());
    return 1;
  }
  const api_base *(*get_api_base)(void) = NULL;
  *(void **)&get_api_base = dlsym(library, "OrtGetApiBase");
  if (!get_api_base) {
    fail(error, size, "'%s' does not export OrtGetApiBase; is it libonnxruntime?", canonical);
    dlclose(library);
    return 1;
  }
  if (environment) {
    /* Nothing of this second library was used: it may go again. */
    fail(error, size, "ONNX Runtime is already loaded from '%s' in this process; every instance must use that library",
         loaded_path);
    dlclose(library);
    return 1;
  }
  const api_base *base = get_api_base();
  const char *runtime_version = base && base->get_version_string ? base->get_version_string() : NULL;
  const void *table = base && base->get_api ? base->get_api(ORION_ORT_API_VERSION) : NULL;
  if (!table) {
    fail(error, size, "ONNX Runtime '%s' (version %s) does not offer C API version %d; use 1.5 or newer", canonical,
         runtime_version ? runtime_version : "unknown", ORION_ORT_API_VERSION);
    dlclose(library);
    return 1;
  }
  bind(table);
  if (self_check(error, size)) {
    memset(&ort, 0, sizeof ort);
    dlclose(library);
    return 1;
  }
  void *env = NULL;
  if (failed(ort.create_env(ORT_LOGGING_LEVEL_ERROR, "orion", &env), "creating the ONNX Runtime environment", error,
             size))
    return 1;
  void *memory = NULL;
  if (failed(ort.create_cpu_memory_info(ORT_DEVICE_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, &memory),
             "describing CPU memory", error, size)) {
    ort.release_env(env);
    return 1;
  }
  snprintf(version, sizeof version, "%s", runtime_version ? runtime_version : "");
  snprintf(loaded_path, sizeof loaded_path, "%s", canonical);
  cpu_memory = memory;
  environment = env;
  return 0;
}

int orion_ort_load(const char *path, char *error, size_t size) {
  pthread_mutex_lock(&load_lock);
  int result = load_locked(path, error, size);
  pthread_mutex_unlock(&load_lock);
  return result;
}

const char *orion_ort_version(void) { return version; }

/* Reads the model's input and output names; refuses a model that does not look like a BERT
 * encoder export. */
static int describe(orion_ort_session *s, const char *model_path, char *error, size_t size) {
  void *allocator = NULL;
  if (failed(ort.default_allocator(&allocator), "getting the default allocator", error, size)) return 1;
  size_t inputs = 0, outputs = 0;
  if (failed(ort.session_input_count(s->session, &inputs), "reading the model's inputs", error, size)) return 1;
  if (failed(ort.session_output_count(s->session, &outputs), "reading the model's outputs", error, size)) return 1;
  int ids = 0, mask = 0;
  for (size_t i = 0; i < inputs; i++) {
    char *name = NULL;
    if (failed(ort.session_input_name(s->session, i, allocator, &name), "reading an input name", error, size))
      return 1;
    int known = 1;
    if (strcmp(name, "input_ids") == 0) ids = 1;
    else if (strcmp(name, "attention_mask") == 0) mask = 1;
    else if (strcmp(name, "token_type_ids") == 0) s->token_types = 1;
    else known = 0;
    if (!known) fail(error, size, "the model '%s' has an input '%s'; expected input_ids, attention_mask and optionally token_type_ids", model_path, name);
    release_quietly(ort.allocator_free(allocator, name));
    if (!known) return 1;
  }
  if (!ids || !mask) {
    fail(error, size, "the model '%s' lacks the input '%s'", model_path, ids ? "attention_mask" : "input_ids");
    return 1;
  }
  if (outputs < 1) {
    fail(error, size, "the model '%s' has no output", model_path);
    return 1;
  }
  char *name = NULL;
  if (failed(ort.session_output_name(s->session, 0, allocator, &name), "reading the output name", error, size))
    return 1;
  snprintf(s->output_name, sizeof s->output_name, "%s", name);
  release_quietly(ort.allocator_free(allocator, name));
  return 0;
}

orion_ort_session *orion_ort_session_open(const char *model_path, int intra_threads, int spinning, char *error,
                                          size_t size) {
  if (!environment) {
    fail(error, size, "ONNX Runtime is not loaded");
    return NULL;
  }
  void *options = NULL;
  if (failed(ort.create_session_options(&options), "creating session options", error, size)) return NULL;
  int bad = failed(ort.set_intra_op_threads(options, intra_threads), "setting intra-op threads", error, size) ||
            failed(ort.set_inter_op_threads(options, 1), "setting inter-op threads", error, size) ||
            failed(ort.set_execution_mode(options, ORT_SEQUENTIAL), "setting sequential execution", error, size) ||
            failed(ort.set_optimization_level(options, ORT_ENABLE_ALL), "setting graph optimisation", error, size) ||
            failed(ort.add_session_config_entry(options, "session.intra_op.allow_spinning", spinning ? "1" : "0"),
                   "setting spinning", error, size);
  orion_ort_session *s = NULL;
  if (!bad) {
    s = calloc(1, sizeof *s);
    if (!s) {
      fail(error, size, "out of memory");
    } else if (failed(ort.create_session(environment, model_path, options, &s->session), "loading the model", error,
                      size) ||
               describe(s, model_path, error, size)) {
      orion_ort_session_close(s);
      s = NULL;
    }
  }
  ort.release_session_options(options);
  return s;
}

int orion_ort_session_wants_token_types(const orion_ort_session *s) { return s->token_types; }

int orion_ort_run(orion_ort_session *s, const int64_t *input_ids, const int64_t *attention_mask,
                  const int64_t *token_types, int64_t batch, int64_t sequence, orion_ort_output *out, char *error,
                  size_t size) {
  memset(out, 0, sizeof *out);
  if (s->token_types && !token_types) {
    fail(error, size, "the model wants token_type_ids");
    return 1;
  }
  const int64_t shape[2] = {batch, sequence};
  const size_t bytes = (size_t)(batch * sequence) * sizeof(int64_t);
  const char *names[3] = {"input_ids", "attention_mask", "token_type_ids"};
  const int64_t *buffers[3] = {input_ids, attention_mask, token_types};
  void *inputs[3] = {NULL, NULL, NULL};
  size_t count = s->token_types ? 3 : 2;
  int result = 1;
  for (size_t i = 0; i < count; i++) {
    if (failed(ort.create_tensor_with_data(cpu_memory, (void *)buffers[i], bytes, shape, 2, ELEMENT_INT64, &inputs[i]),
               "creating an input tensor", error, size))
      goto done;
  }
  const char *output_names[1] = {s->output_name};
  void *output = NULL;
  if (failed(ort.run(s->session, NULL, names, (const void *const *)inputs, count, output_names, 1, &output),
             "running the model", error, size))
    goto done;
  void *info = NULL;
  if (failed(ort.tensor_type_and_shape(output, &info), "reading the output shape", error, size)) {
    ort.release_value(output);
    goto done;
  }
  int element = 0;
  size_t rank = 0;
  int64_t dims[3] = {0, 0, 0};
  int bad = failed(ort.tensor_element_type(info, &element), "reading the output type", error, size) ||
            failed(ort.dimensions_count(info, &rank), "reading the output rank", error, size);
  if (!bad && (element != ELEMENT_FLOAT || rank != 3)) {
    fail(error, size, "the model's output '%s' is not a float tensor [batch, sequence, hidden]", s->output_name);
    bad = 1;
  }
  if (!bad) bad = failed(ort.dimensions(info, dims, 3), "reading the output dimensions", error, size);
  ort.release_tensor_type_and_shape(info);
  void *data = NULL;
  if (!bad) bad = failed(ort.tensor_mutable_data(output, &data), "reading the output", error, size);
  if (!bad && (dims[0] != batch || dims[1] != sequence || dims[2] < 1)) {
    fail(error, size, "the model's output has shape [%lld, %lld, %lld] for input [%lld, %lld]", (long long)dims[0],
         (long long)dims[1], (long long)dims[2], (long long)batch, (long long)sequence);
    bad = 1;
  }
  if (bad) {
    ort.release_value(output);
    goto done;
  }
  out->data = data;
  out->batch = dims[0];
  out->sequence = dims[1];
  out->hidden = dims[2];
  out->value = output;
  result = 0;
done:
  for (size_t i = 0; i < count; i++)
    if (inputs[i]) ort.release_value(inputs[i]);
  return result;
}

void orion_ort_output_release(orion_ort_output *out) {
  if (out->value) ort.release_value(out->value);
  memset(out, 0, sizeof *out);
}

void orion_ort_session_close(orion_ort_session *s) {
  if (!s) return;
  if (s->session) ort.release_session(s->session);
  free(s);
}
