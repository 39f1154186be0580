// dynrnn/dynrnn.h — umbrella header.
//
// dynrnn reproduces tf.compat.v1.nn.dynamic_rnn and bidirectional_dynamic_rnn (forward and
// backward, TF v1 cells, sequence_length rules) as a C++ library with a CPU and a CUDA backend.
//
// Conventions for every function:
//  * Shapes use T = max_time, B = batch, D = input depth, H = num_units, P = num_proj, O = output
//    width (P or H), S = state width. The rightmost dimension is fastest (row-major).
//  * time_major = false: x and outputs are [B, T, ...]; true: [T, B, ...]. No transposes are needed.
//  * With Backend::kCuda every buffer pointer is a device pointer unless marked [host]; work is
//    queued on the caller's stream; nothing synchronizes the host and nothing is allocated per call,
//    so forward and backward can be captured in a CUDA graph. With Backend::kCpu, pointers are host
//    pointers and calls complete before they return.
//  * Weights are one flat buffer holding TensorFlow's variables in TensorFlow's layout (Rnn::params()
//    names each one as TF does); their gradients use the same layout.
//  * Errors come back as a Status whose message names the argument, its value and the expectation;
//    a rejected call launches nothing and writes nothing.
#pragma once

#include "dynrnn/cell_math.h"
#include "dynrnn/rnn.h"
#include "dynrnn/spec.h"
#include "dynrnn/status.h"
#include "dynrnn/weights.h"
