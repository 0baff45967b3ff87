/* The machine's memory read bandwidth: the floor under batch-1 decoding, which reads every
 * weight once per token (SmolLM2-135M in f32: 538 MB a token). Sums a 512 MB array with AVX2
 * loads, split over N threads, best of five passes.
 *
 *   cc -O2 -mavx2 -pthread benches/read_bandwidth.c -o /tmp/read_bandwidth
 *   /tmp/read_bandwidth 1 && /tmp/read_bandwidth 2
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N (128UL * 1024 * 1024) /* floats: 512 MB */
static float *a;

typedef struct { size_t lo, hi; float sum; } part;

static void *sum(void *p) {
    part *x = p;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = x->lo; i < x->hi; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
    }
    float o[8];
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    x->sum = o[0];
    return 0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) return 2;
    a = aligned_alloc(64, N * sizeof(float));
    for (size_t i = 0; i < N; i++) a[i] = 1.0f;
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        struct timespec t0, t1;
        pthread_t th[64];
        part parts[64];
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int t = 0; t < threads; t++) {
            parts[t].lo = (N / threads * t) & ~31UL;
            parts[t].hi = t + 1 == threads ? N : (N / threads * (t + 1)) & ~31UL;
            pthread_create(&th[t], 0, sum, &parts[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(th[t], 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
        if (s < best) best = s;
    }
    printf("%d thread(s): %.1f GB/s read\n", threads, N * sizeof(float) / best / 1e9);
    return 0;
}
