// dynrnn/cell_math.h — the per-element math of every cell, forward and backward, shared by the CPU
// executor and the CUDA kernels (and callable from users' CUDA code).
//
// Each *Params struct is the complete, plain-old-data contract of one pointwise stage of one time
// step: pointers, row strides and flags. `apply(b, j)` computes element j of batch row b; an
// executor calls it for every b < batch and j < cols, in any order and in parallel (no element
// reads what another element of the same stage writes). Masking by sequence_length happens here,
// with TensorFlow's rules: a row past its length gets zero outputs, copies its state through, and
// in backward gets zero pre-activation gradients and passes the state gradient through.
//
// T is the element type of the buffers; arithmetic happens in A = compute_t<T> (float for the 16-bit
// storage types), so a 16-bit stage rounds only where it stores.
//
// The stages live in one header per part: cell_common.h (what they share), sequence_ops.h,
// rnn_cell_math.h, lstm_cell_math.h, gru_cell_math.h, recompute_math.h.
#pragma once

#include "dynrnn/cell_common.h"
#include "dynrnn/gru_cell_math.h"
#include "dynrnn/lstm_cell_math.h"
#include "dynrnn/recompute_math.h"
#include "dynrnn/rnn_cell_math.h"
#include "dynrnn/sequence_ops.h"
