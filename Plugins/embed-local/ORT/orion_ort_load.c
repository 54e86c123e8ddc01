#include "orion_ort_internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loading the runtime: dlopen, the API table by position, its self-check, the environment. */

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

typedef struct api_base {
  const void *(*get_api)(uint32_t version);
  const char *(*get_version_string)(void);
} api_base;

struct orion_ort_table ort;
void *ort_environment;
void *ort_cpu_memory;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static char loaded_path[PATH_MAX];
static char version[64];

void ort_fail(char *error, size_t size, const char *format, ...) {
  if (!error || size == 0) return;
  va_list args;
  va_start(args, format);
  vsnprintf(error, size, format, args);
  va_end(args);
}

int ort_failed(status_t *status, const char *what, char *error, size_t size) {
  if (!status) return 0;
  ort_fail(error, size, "%s: %s", what, ort.get_error_message(status));
  ort.release_status(status);
  return 1;
}

void ort_release_quietly(status_t *status) {
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
    ort_fail(error, size, "the runtime's API table failed its self-check (CreateStatus returned nothing)");
    return 1;
  }
  int code = ort.get_error_code(status);
  const char *message = ort.get_error_message(status);
  int ok = code == ORT_INVALID_ARGUMENT && message && strcmp(message, probe) == 0;
  ort.release_status(status);
  if (!ok) {
    ort_fail(error, size, "the runtime's API table failed its self-check (a status did not read back as written)");
    return 1;
  }
  return 0;
}

static int load_locked(const char *path, char *error, size_t size) {
  if (path[0] != '/') {
    ort_fail(error, size, "the runtime library path '%s' is not absolute", path);
    return 1;
  }
  char canonical[PATH_MAX];
  if (!realpath(path, canonical)) {
    ort_fail(error, size, "cannot resolve the runtime library path '%s'", path);
    return 1;
  }
  if (ort_environment && strcmp(canonical, loaded_path) == 0) return 0;
  /* Never closed: the runtime keeps threads and global state for the life of the process. */
  void *library = dlopen(canonical, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    ort_fail(error, size, "cannot load ONNX Runtime from '%s': %s", canonical, dlerror());
    return 1;
  }
  const api_base *(*get_api_base)(void) = NULL;
  *(void **)&get_api_base = dlsym(library, "OrtGetApiBase");
  if (!get_api_base) {
    ort_fail(error, size, "'%s' does not export OrtGetApiBase; is it libonnxruntime?", canonical);
    dlclose(library);
    return 1;
  }
  if (ort_environment) {
    /* Nothing of this second library was used: it may go again. */
    ort_fail(error, size, "ONNX Runtime is already loaded from '%s' in this process; every instance must use that library",
         loaded_path);
    dlclose(library);
    return 1;
  }
  const api_base *base = get_api_base();
  const char *runtime_version = base && base->get_version_string ? base->get_version_string() : NULL;
  const void *table = base && base->get_api ? base->get_api(ORION_ORT_API_VERSION) : NULL;
  if (!table) {
    ort_fail(error, size, "ONNX Runtime '%s' (version %s) does not offer C API version %d; use 1.5 or newer", canonical,
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
  if (ort_failed(ort.create_env(ORT_LOGGING_LEVEL_ERROR, "orion", &env), "creating the ONNX Runtime ort_environment", error,
             size))
    return 1;
  void *memory = NULL;
  if (ort_failed(ort.create_cpu_memory_info(ORT_DEVICE_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, &memory),
             "describing CPU memory", error, size)) {
    ort.release_env(env);
    return 1;
  }
  snprintf(version, sizeof version, "%s", runtime_version ? runtime_version : "");
  snprintf(loaded_path, sizeof loaded_path, "%s", canonical);
  ort_cpu_memory = memory;
  ort_environment = env;
  return 0;
}

int orion_ort_load(const char *path, char *error, size_t size) {
  pthread_mutex_lock(&load_lock);
  int result = load_locked(path, error, size);
  pthread_mutex_unlock(&load_lock);
  return result;
}

const char *orion_ort_version(void) { return version; }

