#include "orion_ort_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sessions over one model, and runs. */

struct orion_ort_session {
  void *session;
  int token_types;
  char output_name[256];
};

/* Reads the model's input and output names; refuses a model that does not look like a BERT
 * encoder export. */
static int describe(orion_ort_session *s, const char *model_path, char *error, size_t size) {
  void *allocator = NULL;
  if (ort_failed(ort.default_allocator(&allocator), "getting the default allocator", error, size)) return 1;
  size_t inputs = 0, outputs = 0;
  if (ort_failed(ort.session_input_count(s->session, &inputs), "reading the model's inputs", error, size)) return 1;
  if (ort_failed(ort.session_output_count(s->session, &outputs), "reading the model's outputs", error, size)) return 1;
  int ids = 0, mask = 0;
  for (size_t i = 0; i < inputs; i++) {
    char *name = NULL;
    if (ort_failed(ort.session_input_name(s->session, i, allocator, &name), "reading an input name", error, size))
      return 1;
    int known = 1;
    if (strcmp(name, "input_ids") == 0) ids = 1;
    else if (strcmp(name, "attention_mask") == 0) mask = 1;
    else if (strcmp(name, "token_type_ids") == 0) s->token_types = 1;
    else known = 0;
    if (!known) ort_fail(error, size, "the model '%s' has an input '%s'; expected input_ids, attention_mask and optionally token_type_ids", model_path, name);
    ort_release_quietly(ort.allocator_free(allocator, name));
    if (!known) return 1;
  }
  if (!ids || !mask) {
    ort_fail(error, size, "the model '%s' lacks the input '%s'", model_path, ids ? "attention_mask" : "input_ids");
    return 1;
  }
  if (outputs < 1) {
    ort_fail(error, size, "the model '%s' has no output", model_path);
    return 1;
  }
  char *name = NULL;
  if (ort_failed(ort.session_output_name(s->session, 0, allocator, &name), "reading the output name", error, size))
    return 1;
  snprintf(s->output_name, sizeof s->output_name, "%s", name);
  ort_release_quietly(ort.allocator_free(allocator, name));
  return 0;
}

orion_ort_session *orion_ort_session_open(const char *model_path, int intra_threads, int spinning, char *error,
                                          size_t size) {
  if (!ort_environment) {
    ort_fail(error, size, "ONNX Runtime is not loaded");
    return NULL;
  }
  void *options = NULL;
  if (ort_failed(ort.create_session_options(&options), "creating session options", error, size)) return NULL;
  int bad = ort_failed(ort.set_intra_op_threads(options, intra_threads), "setting intra-op threads", error, size) ||
            ort_failed(ort.set_inter_op_threads(options, 1), "setting inter-op threads", error, size) ||
            ort_failed(ort.set_execution_mode(options, ORT_SEQUENTIAL), "setting sequential execution", error, size) ||
            ort_failed(ort.set_optimization_level(options, ORT_ENABLE_ALL), "setting graph optimisation", error, size) ||
            ort_failed(ort.add_session_config_entry(options, "session.intra_op.allow_spinning", spinning ? "1" : "0"),
                   "setting spinning", error, size);
  orion_ort_session *s = NULL;
  if (!bad) {
    s = calloc(1, sizeof *s);
    if (!s) {
      ort_fail(error, size, "out of memory");
    } else if (ort_failed(ort.create_session(ort_environment, model_path, options, &s->session), "loading the model", error,
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
    ort_fail(error, size, "the model wants token_type_ids");
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
    if (ort_failed(ort.create_tensor_with_data(ort_cpu_memory, (void *)buffers[i], bytes, shape, 2, ELEMENT_INT64, &inputs[i]),
               "creating an input tensor", error, size))
      goto done;
  }
  const char *output_names[1] = {s->output_name};
  void *output = NULL;
  if (ort_failed(ort.run(s->session, NULL, names, (const void *const *)inputs, count, output_names, 1, &output),
             "running the model", error, size))
    goto done;
  void *info = NULL;
  if (ort_failed(ort.tensor_type_and_shape(output, &info), "reading the output shape", error, size)) {
    ort.release_value(output);
    goto done;
  }
  int element = 0;
  size_t rank = 0;
  int64_t dims[3] = {0, 0, 0};
  int bad = ort_failed(ort.tensor_element_type(info, &element), "reading the output type", error, size) ||
            ort_failed(ort.dimensions_count(info, &rank), "reading the output rank", error, size);
  if (!bad && (element != ELEMENT_FLOAT || rank != 3)) {
    ort_fail(error, size, "the model's output '%s' is not a float tensor [batch, sequence, hidden]", s->output_name);
    bad = 1;
  }
  if (!bad) bad = ort_failed(ort.dimensions(info, dims, 3), "reading the output dimensions", error, size);
  ort.release_tensor_type_and_shape(info);
  void *data = NULL;
  if (!bad) bad = ort_failed(ort.tensor_mutable_data(output, &data), "reading the output", error, size);
  if (!bad && (dims[0] != batch || dims[1] != sequence || dims[2] < 1)) {
    ort_fail(error, size, "the model's output has shape [%lld, %lld, %lld] for input [%lld, %lld]", (long long)dims[0],
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
