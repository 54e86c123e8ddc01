/*
 * ONNX Runtime, reached through its C API table without its headers.
 *
 * The runtime is loaded with dlopen from an absolute path (the onnxruntime wheel ships the
 * library but no headers). Its C API is a table of function pointers that only ever grows at its
 * end, so the few entries used here are reached by their documented positions; a start-up
 * self-check confirms the table before anything else is called.
 */
#ifndef ORION_ORT_H
#define ORION_ORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An inference session over one model. Run is safe from several threads at once. */
typedef struct orion_ort_session orion_ort_session;

/* The output of one run: `data` holds batch * sequence * hidden floats, row-major, owned by
 * `value` until orion_ort_output_release. */
typedef struct orion_ort_output {
  const float *data;
  int64_t batch;
  int64_t sequence;
  int64_t hidden;
  void *value;
} orion_ort_output;

/* Loads the runtime library at `path` once per process (never unloaded), checks its API table
 * and creates the process's one environment (logging at ERROR). Returns 0 on success; otherwise
 * non-zero with a message in `error`. A second call with the same library (after resolving
 * links) succeeds at once; with another library it fails, after checking that library is ONNX
 * Runtime at all (it is opened to check, then closed again). */
int orion_ort_load(const char *path, char *error, size_t error_size);

/* The loaded runtime's version string ("1.31.1"), or "" before a successful load. */
const char *orion_ort_version(void);

/* Opens `model_path` with `intra_threads` intra-op threads (inter-op 1, sequential execution,
 * every graph optimisation). `spinning` 0 stops idle intra-op threads from spin-waiting.
 * Returns NULL with a message in `error` on failure. */
orion_ort_session *orion_ort_session_open(const char *model_path, int intra_threads, int spinning, char *error,
                                          size_t error_size);

/* 1 when the model takes a `token_type_ids` input besides `input_ids` and `attention_mask`. */
int orion_ort_session_wants_token_types(const orion_ort_session *session);

/* Runs the model on `batch` rows of `sequence` token ids (int64, row-major) with their attention
 * mask; `token_types` may be NULL when the model does not want them. Returns 0 and fills `out`, or
 * non-zero with a message in `error`. */
int orion_ort_run(orion_ort_session *session, const int64_t *input_ids, const int64_t *attention_mask,
                  const int64_t *token_types, int64_t batch, int64_t sequence, orion_ort_output *out,
                  char *error, size_t error_size);

void orion_ort_output_release(orion_ort_output *out);
void orion_ort_session_close(orion_ort_session *session);

#ifdef __cplusplus
}
#endif

#endif
