#!/usr/bin/env bash
# Writes the fuzzer's seed corpus into $1. The decoder (fuzz_api.cpp) reads bytes in order and a
# missing byte reads as 0, the ordinary choice, so an empty input is already a valid LSTM call;
# each seed below sets the first few decisions to reach another family of valid calls.
#   spec: layers (bits 0-1: fw cells - 1, 3 = none; bits 2-3: bw cells), then per cell
#         kind (0 LSTM, 1 GRU, 2 BasicLSTM, 3 BasicRNN), units (1 + b % 8), activation (0 tanh, 1 relu),
#         options (1 forget_bias, 2 peepholes, 4 cell_clip, 8 num_proj, 16 proj_clip) and their values;
#         input_size (1 + b % 8), flags (bits 0-1 dtype: 0 float32, 1 float64, 2 bfloat16, 3 float16;
#         2 time_major, 3 swap_memory, 6-7 parallel_iterations, then its value when bits 6-7 are 1),
#         more (bit 0 recompute, bits 1-2 activation_memory_budget, bit 3 a raw dtype byte follows)
#   then status code, backend, conversion, output_width, size queries, T, B, depth, lengths, ...
set -euo pipefail
out=${1:?usage: seed_corpus.sh DIR}
mkdir -p "$out"
seed() { printf "$2" > "$out/seed-$1"; }
seed empty ''
# LSTMCell(3, peepholes, cell_clip, num_proj=2, proj_clip), D=4, T=5, B=3, lengths, training + backward
seed lstm_proj_peep '\x00\x00\x02\x00\x1e\x00\x01\x00\x03\x00\x00\x00\x00\x00\x00\x04\x02\x00\x02'
# bidirectional: fw [GRU(5), BasicRNN(3, relu)], bw [BasicLSTM(4, forget_bias 2.5), GRU(2)], time_major
seed bidi_stacks '\x09\x01\x04\x00\x00\x03\x02\x01\x00\x02\x03\x00\x01\x04\x01\x01\x00\x00\x01\x04\x00\x00\x00\x00\x00\x00\x03\x03\x00\x02'
# float64 GRU(4), D=3, T=6, B=2, no lengths
seed gru_f64 '\x00\x01\x03\x00\x00\x02\x01\x00\x00\x00\x00\x00\x00\x05\x01\x00\x00'
# swap_memory with parallel_iterations = 2, LSTM(2), T=7, B=2, lengths
seed swap_chunks '\x00\x00\x01\x00\x00\x01\x48\x01\x00\x00\x00\x00\x00\x06\x01\x00\x02'
# a three-layer mixed stack, batch-major, mixed lengths
seed stack3 '\x02\x03\x02\x01\x00\x01\x03\x00\x00\x00\x04\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x05\x03\x00\x03'
# weight conversion (BasicLSTM) and the size queries
seed convert '\x00\x02\x03\x00\x00\x02\x00\x00\x00\xf0\x01\x00\x00\x03\x00\x00\x00\x01\x01\x00\x02\x02\x04'
# recompute, bidirectional LSTM / GRU, parallel_iterations = 3, T = 7, B = 3, lengths
seed recompute '\x04\x00\x02\x00\x00\x01\x01\x00\x00\x01\x41\x02\x01\x00\x00\x00\x00\x00\x06\x02\x00\x02'
# swap_memory with a budget of a few chunks, parallel_iterations = 1, T = 8, B = 2
seed swap_budget '\x00\x00\x01\x00\x00\x01\x48\x00\x02\x40\x0c\x00\x00\x00\x00\x00\x07\x01\x00\x02'
# the 16-bit storage types: bfloat16 GRU(4); float16 LSTMCell(3, peepholes, clips, num_proj=2);
# bfloat16 swap_memory with 2-step chunks; float16 bidirectional recompute
seed gru_bf16 '\x00\x01\x03\x00\x00\x02\x02\x00\x00\x00\x00\x00\x00\x05\x01\x00\x00'
seed lstm_proj_peep_f16 '\x00\x00\x02\x00\x1e\x00\x01\x00\x03\x03\x00\x00\x00\x00\x00\x04\x02\x00\x02'
seed swap_chunks_bf16 '\x00\x00\x01\x00\x00\x01\x4a\x01\x00\x00\x00\x00\x00\x06\x01\x00\x02'
seed recompute_f16 '\x04\x00\x02\x00\x00\x01\x01\x00\x00\x01\x43\x02\x01\x00\x00\x00\x00\x00\x06\x02\x00\x02'
# an invalid dtype (more bit 3, then the byte 4): create must fail
seed dtype_invalid '\x00\x00\x02\x00\x00\x02\x00\x08\x04'
