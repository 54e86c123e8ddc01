// Dot-product kernels for vector-flat: an AVX2/FMA version chosen at run time when the CPU
// and the operating system support it, and a portable version otherwise.
#ifndef ORION_VECTOR_KERNELS_H
#define ORION_VECTOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One set of kernels.
typedef struct orion_vk_kernels {
    /// The float32 dot product of `a` and `b`, `n` elements each.
    float (*dot_f32)(const float *a, const float *b, size_t n);
    /// Dot products of `query` with the rows `which[0..<n]` of `rows` (`dimensions` floats
    /// each, back to back), into `out[0..<n]`.
    void (*dot_f32_rows)(const float *query, const float *rows, const uint32_t *which, size_t n, size_t dimensions, float *out);
    /// Integer dot products of an int8 `query` with `count` int8 rows stored back to back,
    /// `dimensions` each, into `out[count]`. Codes lie in [-127, 127]; `row_sums[r]` is the sum
    /// of row r's codes.
    void (*dot_i8_rows)(const int8_t *query, const int8_t *rows, const int32_t *row_sums, size_t count, size_t dimensions, int32_t *out);
    /// The first pass of vector-flat's exact search: from the int8 dot products `dots[count]`,
    /// the rows whose score may reach the exact top `k`. Row r's estimate is
    /// dots[r]·query_scale·scales[r]; its error bound is query_norm·errors[r] +
    /// query_error·norms[r] + rounding·(query_norm + query_error)·(norms[r] + errors[r]). With τ
    /// at most the k-th largest estimate − bound, a row is a candidate when estimate + bound ≥ τ.
    /// `mask` (NULL: every row) leaves out rows whose byte is 0; `scratch` holds 2·count floats.
    /// Writes the candidates to `out` in row order and returns how many; when fewer than k rows
    /// pass the mask, all of them are the candidates.
    size_t (*candidates)(const int32_t *dots, const float *scales, const float *errors, const float *norms, const uint8_t *mask,
                         size_t count, float query_scale, float query_norm, float query_error, float rounding, size_t k,
                         float *scratch, uint32_t *out);
    /// The instruction set: "avx512vnni", "avx2" or "portable".
    const char *isa;
} orion_vk_kernels;

/// The portable `candidates` (see `orion_vk_kernels.candidates`).
size_t orion_vk_candidates(const int32_t *dots, const float *scales, const float *errors, const float *norms, const uint8_t *mask,
                           size_t count, float query_scale, float query_norm, float query_error, float rounding, size_t k,
                           float *scratch, uint32_t *out);

/// The fastest kernels this CPU and operating system support (asked of CPUID at each call: keep the answer).
const orion_vk_kernels *orion_vk_best(void);

/// The AVX2 kernels when this CPU has AVX2 and FMA, else NULL (for comparison).
const orion_vk_kernels *orion_vk_avx2(void);

/// The portable kernels (plain C), for comparison.
const orion_vk_kernels *orion_vk_portable(void);

#ifdef __cplusplus
}
#endif

#endif
