// The README's usage example: a 2-layer LSTM-over-GRU dynamic_rnn with sequence_length, forward and
// backward, on the CPU backend (host pointers). With Backend::kCuda the same code takes device
// pointers and a cudaStream_t.
#include <dynrnn/dynrnn.h>

#include <cstdio>
#include <memory>
#include <vector>

int main() {
  dynrnn::RnnSpec spec;
  spec.cells_fw = {dynrnn::CellSpec::lstm(8), dynrnn::CellSpec::gru(6)};  // MultiRNNCell([LSTMCell(8), GRUCell(6)])
  spec.input_size = 5;                                                    // inputs: [B, T, 5] (time_major=False)
  std::unique_ptr<dynrnn::Rnn> rnn;
  dynrnn::Status st = dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &rnn);
  if (!st) return std::printf("%s\n", st.to_string().c_str()), 1;

  const int64_t B = 3, T = 4;
  std::vector<float> x(B * T * 5, 0.25f), weights(rnn->param_count(), 0.05f);
  std::vector<int32_t> lengths = {4, 2, 0};  // row 2 returns its initial state
  std::vector<float> outputs(B * T * rnn->output_width(0)), final_state(B * rnn->state_width());
  size_t ws_bytes = 0, rs_bytes = 0;
  if (!rnn->get_workspace_size(T, B, /*training=*/true, &ws_bytes) || !rnn->get_reserve_size(T, B, &rs_bytes)) return 1;
  std::vector<char> workspace(ws_bytes), reserve(rs_bytes);

  dynrnn::ForwardArgs f;
  f.x_shape[0] = B, f.x_shape[1] = T, f.x_shape[2] = 5;
  f.x = x.data();
  f.sequence_length = lengths.data();
  f.sequence_length_size = B;
  f.weights = weights.data();  // rnn->params() names each TF variable: rnn/multi_rnn_cell/cell_0/lstm_cell/kernel, ...
  f.outputs = outputs.data();
  f.final_state = final_state.data();
  f.workspace = workspace.data(), f.workspace_bytes = ws_bytes;
  f.training = true;  // keep activations in the reserve for backward
  f.reserve = reserve.data(), f.reserve_bytes = rs_bytes;
  if (!(st = rnn->forward(f))) return std::printf("%s\n", st.to_string().c_str()), 1;

  std::vector<float> grad_out(outputs.size(), 1.0f), grad_x(x.size()), grad_w(weights.size());
  auto b = dynrnn::BackwardArgs::of(f);  // the forward's inputs, workspace and reserve
  b.grad_outputs = grad_out.data();      // dL/d outputs for L = sum(outputs)
  b.grad_inputs = grad_x.data();
  b.grad_weights = grad_w.data();
  if (!(st = rnn->backward(b))) return std::printf("%s\n", st.to_string().c_str()), 1;

  // Row 1 has length 2: its outputs at t = 2, 3 are exactly zero, and so is dL/dx there.
  const int64_t O = rnn->output_width(0);
  bool ok = outputs[(1 * T + 3) * O] == 0.0f && grad_x[(1 * T + 3) * 5] == 0.0f && outputs[(0 * T + 3) * O] != 0.0f;
  std::printf("outputs[0, 3, 0] = %.6f, params = %lld, usage example %s\n", outputs[3 * O],
              static_cast<long long>(rnn->param_count()), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
