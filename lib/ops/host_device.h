// MRCNN_HOST_DEVICE: marks code shared by the CPU build and the CUDA kernels (host and device under nvcc).
#pragma once

#if defined(__CUDACC__)
#define MRCNN_HOST_DEVICE __host__ __device__
#else
#define MRCNN_HOST_DEVICE
#endif
