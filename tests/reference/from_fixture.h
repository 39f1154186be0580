// Conversion of a golden fixture (tests/golden/fixture.h) into the float64
// reference's Problem / Upstream, reusable by every test that replays fixtures.
#pragma once

#include <string>

#include "../golden/fixture.h"
#include "reference.h"

namespace ref {

// A "cell <dir> <layer> key=value ..." line -> Cell. Attributes: kind
// (basic_rnn|basic_lstm|lstm|gru|gru_ra), units, activation (tanh|relu),
// forget_bias, use_peepholes (0|1), cell_clip, num_proj, proj_clip, residual
// (0|1: the cell wrapped in ResidualWrapper); an absent attribute (or the value
// "None") means TF's None / default (residual: 0). Throws std::runtime_error on
// anything it does not understand.
Cell cell_from_fixture(const golden::CellLine&);

// The whole problem: layout, cells, x, seq_len, initial state (when
// has_initial_state), and every weight "<dir>/<l>/<name>". Throws
// std::runtime_error naming the fixture on missing/mis-sized tensors or on
// weight tensors the cell does not have.
Problem problem_from_fixture(const golden::Fixture&);

// The loss weights: dout/fw, dout/bw, dfinal/<dir>/<l>/<c|h> (absent = zero).
Upstream upstream_from_fixture(const golden::Fixture&);

}  // namespace ref
