/*
 * Shared between the bridge's two halves (loading the runtime; sessions and runs): the ONNX
 * Runtime entries in use, the process's environment, and error helpers. Not part of the
 * bridge's interface (include/orion_ort.h).
 */
#ifndef ORION_ORT_INTERNAL_H
#define ORION_ORT_INTERNAL_H

#include "orion_ort.h"

#include <stddef.h>
#include <stdint.h>

#define ORT_HIDDEN __attribute__((visibility("hidden")))

/* Enumerations, by value. */
enum { ORT_INVALID_ARGUMENT = 2 };
enum { ORT_LOGGING_LEVEL_ERROR = 3 };
enum { ORT_SEQUENTIAL = 0 };
enum { ORT_ENABLE_ALL = 99 };
enum { ELEMENT_FLOAT = 1, ELEMENT_INT64 = 7 };
enum { ORT_DEVICE_ALLOCATOR = 0 };
enum { ORT_MEM_TYPE_DEFAULT = 0 };

typedef void status_t;

/* The entries used, typed. Every OrtStatus* is NULL on success. */
struct orion_ort_table {
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
};


/* Bound once by orion_ort_load; read-only afterwards. */
extern struct orion_ort_table ort ORT_HIDDEN;
/* The process's one environment and a description of CPU memory; NULL until loaded. */
extern void *ort_environment ORT_HIDDEN;
extern void *ort_cpu_memory ORT_HIDDEN;

/* Writes a formatted message into `error` (of `size` bytes). */
void ort_fail(char *error, size_t size, const char *format, ...) ORT_HIDDEN;
/* Copies a failed status's message, prefixed with `what`, into `error` and releases the status.
 * Returns 1 on failure, 0 for a NULL (successful) status. */
int ort_failed(status_t *status, const char *what, char *error, size_t size) ORT_HIDDEN;
/* For calls whose failure changes nothing for the caller (freeing a name): drop the status. */
void ort_release_quietly(status_t *status) ORT_HIDDEN;

#endif
