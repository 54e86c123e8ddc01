#include "orion_vector_kernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// MARK: portable

static float dot_f32_portable(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void dot_f32_rows_portable(const float *q, const float *rows, const uint32_t *which, size_t n, size_t d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = dot_f32_portable(q, rows + (size_t)which[i] * d, d);
}

static int32_t dot_i8_portable(const int8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static void dot_i8_rows_portable(const int8_t *q, const int8_t *rows, const int32_t *sums, size_t count, size_t d, int32_t *out) {
    (void)sums;
    for (size_t r = 0; r < count; r++) out[r] = dot_i8_portable(q, rows + r * d, d);
}

#if defined(__x86_64__)

// MARK: AVX2 + FMA

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float total = _mm_cvtss_f32(h);
    for (; i < n; i++) total += a[i] * b[i];
    return total;
}

// Rows are scattered: fetch the next row's cache lines while this one is summed.
__attribute__((target("avx2,fma"))) static void dot_f32_rows_avx2(const float *q, const float *rows, const uint32_t *which, size_t n, size_t d, float *out) {
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n) {
            const char *next = (const char *)(rows + (size_t)which[i + 1] * d);
            for (size_t offset = 0; offset < d * sizeof(float); offset += 64) _mm_prefetch(next + offset, _MM_HINT_T0);
        }
        out[i] = dot_f32_avx2(q, rows + (size_t)which[i] * d, d);
    }
}

// 32 codes per step: |q| (unsigned) times x carrying q's sign, pairwise into int16 (no
// saturation: 2 × 127 × 127 < 32767), then pairwise into int32.
__attribute__((target("avx2"))) static void dot_i8_rows_avx2(const int8_t *q, const int8_t *rows, const int32_t *sums, size_t count, size_t d, int32_t *out) {
    (void)sums;
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t blocked = d & ~(size_t)31;
    for (size_t r = 0; r < count; r++) {
        const int8_t *v = rows + r * d;
        __m256i acc = _mm256_setzero_si256();
        for (size_t i = 0; i < blocked; i += 32) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(q + i));
            __m256i b = _mm256_loadu_si256((const __m256i *)(v + i));
            __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        out[r] = _mm_cvtsi128_si32(s) + dot_i8_portable(q + blocked, v + blocked, d - blocked);
    }
}

// MARK: AVX-512 VNNI

// VPDPBUSD multiplies unsigned by signed bytes, so the query is shifted to q + 128 (0...255, the
// same bits as q XOR 0x80): Σ (q + 128)·x = Σ q·x + 128·Σ x, and the row's code sum takes the
// shift back out.
// Four rows per pass share each load of the query.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void dot_i8_rows_vnni(const int8_t *q, const int8_t *rows, const int32_t *sums, size_t count, size_t d, int32_t *out) {
    const size_t blocked = d & ~(size_t)63;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const int8_t *v = rows + r * d;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < blocked; i += 64) {
            __m512i u = _mm512_xor_si512(_mm512_loadu_si512(q + i), flip);
            a0 = _mm512_dpbusd_epi32(a0, u, _mm512_loadu_si512(v + i));
            a1 = _mm512_dpbusd_epi32(a1, u, _mm512_loadu_si512(v + d + i));
            a2 = _mm512_dpbusd_epi32(a2, u, _mm512_loadu_si512(v + 2 * d + i));
            a3 = _mm512_dpbusd_epi32(a3, u, _mm512_loadu_si512(v + 3 * d + i));
        }
        out[r] = _mm512_reduce_add_epi32(a0);
        out[r + 1] = _mm512_reduce_add_epi32(a1);
        out[r + 2] = _mm512_reduce_add_epi32(a2);
        out[r + 3] = _mm512_reduce_add_epi32(a3);
    }
    for (; r < count; r++) {
        const int8_t *v = rows + r * d;
        __m512i a0 = _mm512_setzero_si512();
        for (size_t i = 0; i < blocked; i += 64) a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512(q + i), flip), _mm512_loadu_si512(v + i));
        out[r] = _mm512_reduce_add_epi32(a0);
    }
    for (r = 0; r < count; r++) {
        const int8_t *v = rows + r * d;
        int32_t tail = 0;
        for (size_t i = blocked; i < d; i++) tail += ((int32_t)q[i] + 128) * (int32_t)v[i];
        out[r] += tail - 128 * sums[r];
    }
}

// MARK: CPU features

static int os_saves(unsigned mask) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & mask) == mask;
}

static int cpu_has_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12;
    if ((c & (osxsave | avx | fma)) != (osxsave | avx | fma)) return 0;
    if (!os_saves(0x6)) return 0;  // XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 5)) != 0;  // AVX2
}

static int cpu_has_avx512_vnni(void) {
    unsigned a, b, c, d;
    if (!cpu_has_avx2_fma()) return 0;
    if (!os_saves(0xE6)) return 0;  // plus the opmask and ZMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned f = 1u << 16, bw = 1u << 30;
    return (b & (f | bw)) == (f | bw) && (c & (1u << 11)) != 0;
}

#endif

// MARK: candidates

enum { buckets = 1024, lanes = 4 };

// The query's share of every row's error bound.
struct bound_terms {
    float scale, norm, error, shared;
};

// Per row r: uppers[r] and lowers[r], the estimate ± its error bound; and the range of lowers.
typedef void (*bounds_fn)(const int32_t *dots, const float *scales, const float *errors, const float *norms, size_t count,
                          struct bound_terms t, float *uppers, float *lowers, float *low, float *high);

static void bounds_portable(const int32_t *dots, const float *scales, const float *errors, const float *norms, size_t count,
                            struct bound_terms t, float *uppers, float *lowers, float *low_out, float *high_out) {
    float low = INFINITY, high = -INFINITY;
    for (size_t r = 0; r < count; r++) {
        const float estimate = (float)dots[r] * t.scale * scales[r];
        const float bound = t.norm * errors[r] + t.error * norms[r] + t.shared * (norms[r] + errors[r]);
        const float lower = estimate - bound;
        uppers[r] = estimate + bound;
        lowers[r] = lower;
        low = lower < low ? lower : low;
        high = lower > high ? lower : high;
    }
    *low_out = low;
    *high_out = high;
}

#if defined(__x86_64__)
// The same arithmetic, eight rows at a time (bounds are finite, so MINPS/MAXPS need no NaN care).
__attribute__((target("avx2,fma"))) static void bounds_avx2(const int32_t *dots, const float *scales, const float *errors, const float *norms,
                                                            size_t count, struct bound_terms t, float *uppers, float *lowers, float *low_out,
                                                            float *high_out) {
    const __m256 scale = _mm256_set1_ps(t.scale), qnorm = _mm256_set1_ps(t.norm), qerror = _mm256_set1_ps(t.error),
                 shared = _mm256_set1_ps(t.shared);
    __m256 low = _mm256_set1_ps(INFINITY), high = _mm256_set1_ps(-INFINITY);
    size_t r = 0;
    for (; r + 8 <= count; r += 8) {
        const __m256 estimate = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(dots + r))), scale),
                                              _mm256_loadu_ps(scales + r));
        const __m256 e = _mm256_loadu_ps(errors + r), n = _mm256_loadu_ps(norms + r);
        const __m256 bound = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(qnorm, e), _mm256_mul_ps(qerror, n)),
                                           _mm256_mul_ps(shared, _mm256_add_ps(n, e)));
        const __m256 lower = _mm256_sub_ps(estimate, bound);
        _mm256_storeu_ps(uppers + r, _mm256_add_ps(estimate, bound));
        _mm256_storeu_ps(lowers + r, lower);
        low = _mm256_min_ps(low, lower);
        high = _mm256_max_ps(high, lower);
    }
    float lows[8], highs[8];
    _mm256_storeu_ps(lows, low);
    _mm256_storeu_ps(highs, high);
    float tail_low, tail_high;
    bounds_portable(dots + r, scales + r, errors + r, norms + r, count - r, t, uppers + r, lowers + r, &tail_low, &tail_high);
    for (int i = 0; i < 8; i++) {
        tail_low = lows[i] < tail_low ? lows[i] : tail_low;
        tail_high = highs[i] > tail_high ? highs[i] : tail_high;
    }
    *low_out = tail_low;
    *high_out = tail_high;
}
#endif

static size_t candidates(bounds_fn fill, const int32_t *dots, const float *scales, const float *errors, const float *norms,
                         const uint8_t *mask, size_t count, float query_scale, float query_norm, float query_error, float rounding,
                         size_t k, float *scratch, uint32_t *out) {
    float *restrict uppers = scratch, *restrict lowers = scratch + count;
    const struct bound_terms terms = {query_scale, query_norm, query_error, rounding * (query_norm + query_error)};
    float low, high;
    fill(dots, scales, errors, norms, count, terms, uppers, lowers, &low, &high);
    size_t passing = count;
    if (mask) {
        // Rows the mask leaves out are never candidates and never counted below.
        passing = 0;
        low = INFINITY, high = -INFINITY;
        for (size_t r = 0; r < count; r++) {
            if (mask[r]) {
                passing++;
                low = lowers[r] < low ? lowers[r] : low;
                high = lowers[r] > high ? lowers[r] : high;
            } else {
                uppers[r] = lowers[r] = -INFINITY;
            }
        }
    }
    size_t n = 0;
    if (passing < k || k == 0) {
        for (size_t r = 0; r < count; r++)
            if (!mask || mask[r]) out[n++] = (uint32_t)r;
        return n;
    }
    // A threshold at most the k-th largest lower bound is enough (it only admits more rows):
    // the lower edge of the histogram bucket that holds the k-th largest. Four interleaved
    // histograms keep consecutive increments of one bucket from waiting on each other.
    float threshold = low;
    const float width = (high - low) / buckets;
    if (width > 0) {
        uint32_t histogram[lanes][buckets] = {{0}};
        const float scale = 1 / width;
        for (size_t r = 0; r < count; r++) {
            const float offset = (lowers[r] - low) * scale;  // -inf for a masked-out row
            if (!(offset >= 0)) continue;
            const int bucket = offset < (float)(buckets - 1) ? (int)offset : buckets - 1;  // int: a cheap conversion
            histogram[r % lanes][bucket]++;
        }
        size_t seen = 0;
        for (size_t bucket = buckets; bucket-- > 0;) {
            for (size_t lane = 0; lane < lanes; lane++) seen += histogram[lane][bucket];
            if (seen >= k) {
                // One bucket lower than it needs to be, against rounding in the bucket index,
                // and a margin against rounding in this sum.
                threshold = (bucket > 0 ? low + (float)(bucket - 1) * width : low) - (fabsf(low) + fabsf(high)) * 1e-6f;
                break;
            }
        }
    }
    for (size_t r = 0; r < count; r++)
        if (uppers[r] >= threshold) out[n++] = (uint32_t)r;
    return n;
}

size_t orion_vk_candidates(const int32_t *dots, const float *scales, const float *errors, const float *norms, const uint8_t *mask,
                           size_t count, float query_scale, float query_norm, float query_error, float rounding, size_t k,
                           float *scratch, uint32_t *out) {
    return candidates(bounds_portable, dots, scales, errors, norms, mask, count, query_scale, query_norm, query_error, rounding, k, scratch, out);
}

#if defined(__x86_64__)
static size_t candidates_avx2(const int32_t *dots, const float *scales, const float *errors, const float *norms, const uint8_t *mask,
                              size_t count, float query_scale, float query_norm, float query_error, float rounding, size_t k,
                              float *scratch, uint32_t *out) {
    return candidates(bounds_avx2, dots, scales, errors, norms, mask, count, query_scale, query_norm, query_error, rounding, k, scratch, out);
}
#endif

// MARK: dispatch

static const orion_vk_kernels portable = {dot_f32_portable, dot_f32_rows_portable, dot_i8_rows_portable, orion_vk_candidates, "portable"};
#if defined(__x86_64__)
static const orion_vk_kernels avx2 = {dot_f32_avx2, dot_f32_rows_avx2, dot_i8_rows_avx2, candidates_avx2, "avx2"};
static const orion_vk_kernels vnni = {dot_f32_avx2, dot_f32_rows_avx2, dot_i8_rows_vnni, candidates_avx2, "avx512vnni"};
#endif

const orion_vk_kernels *orion_vk_portable(void) { return &portable; }

const orion_vk_kernels *orion_vk_best(void) {
#if defined(__x86_64__)
    if (cpu_has_avx512_vnni()) return &vnni;
    if (cpu_has_avx2_fma()) return &avx2;
#endif
    return &portable;
}

const orion_vk_kernels *orion_vk_avx2(void) {
#if defined(__x86_64__)
    if (cpu_has_avx2_fma()) return &avx2;
#endif
    return 0;
}
