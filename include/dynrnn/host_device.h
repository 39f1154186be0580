// dynrnn/host_device.h — DYNRNN_HD marks functions that run both on the host (CPU executor) and in
// CUDA kernels, so that both paths share one copy of the math.
#pragma once

#if defined(__CUDACC__)
#define DYNRNN_HD __host__ __device__ __forceinline__
#else
#define DYNRNN_HD inline
#endif
