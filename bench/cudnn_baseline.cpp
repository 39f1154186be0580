#include "bench/cudnn_baseline.h"

#include <cudnn.h>

#include <algorithm>
#include <optional>

#include "bench/cuda_check.h"
#include "bench/cudnn_mapping.h"
#include "bench/gpu_timing.h"
#include "bench/packed_layout.h"
#include "bench/precision_types.h"
#include "bench/stats.h"

#define BENCH_CUDNN_CHECK(expr)                                                              \
  do {                                                                                       \
    const cudnnStatus_t bench_st_ = (expr);                                                  \
    if (bench_st_ != CUDNN_STATUS_SUCCESS) {                                                 \
      throw ::bench::BenchError(std::string(#expr).substr(0, std::string(#expr).find('(')) + \
                                " failed: " + cudnnGetErrorString(bench_st_));               \
    }                                                                                        \
  } while (0)

/// A setup call (descriptors, sizes) of a 16-bit RNN: cuDNN refusing the parameters (a BAD_PARAM or
/// NOT_SUPPORTED status) means this cuDNN does not run the data type for this configuration, which
/// the row reports as unsupported; for other types, and for every other status, it is an error.
#define BENCH_CUDNN_SETUP(expr) ::bench::cudnn_setup_check((expr), #expr, rejection_is_unsupported_)

namespace bench {
namespace {

void cudnn_setup_check(cudnnStatus_t st, const char* expr, bool rejection_is_unsupported) {
  if (st == CUDNN_STATUS_SUCCESS) return;
  const std::string e(expr);
  const std::string what = e.substr(0, e.find('(')) + " failed: " + cudnnGetErrorString(st);
  const int category = CUDNN_STATUS_CATEGORY(st);
  if (rejection_is_unsupported && (category == CUDNN_STATUS_BAD_PARAM || category == CUDNN_STATUS_NOT_SUPPORTED)) {
    throw BenchUnsupported("cuDNN " + CudnnSession::runtime_version() + " rejects this 16-bit RNN: " + what);
  }
  throw BenchError(what);
}

/// cuDNN's name of a storage type. 16-bit data computes in float (mathPrec CUDNN_DATA_FLOAT, as
/// PyTorch's promote_rnn_math_type does for half), double in double, float in float.
template <typename T>
struct CudnnType;
template <>
struct CudnnType<float> {
  static constexpr cudnnDataType_t data = CUDNN_DATA_FLOAT, math = CUDNN_DATA_FLOAT;
};
template <>
struct CudnnType<double> {
  static constexpr cudnnDataType_t data = CUDNN_DATA_DOUBLE, math = CUDNN_DATA_DOUBLE;
};
template <>
struct CudnnType<dynrnn::bfloat16> {
  static constexpr cudnnDataType_t data = CUDNN_DATA_BFLOAT16, math = CUDNN_DATA_FLOAT;
};
template <>
struct CudnnType<dynrnn::float16> {
  static constexpr cudnnDataType_t data = CUDNN_DATA_HALF, math = CUDNN_DATA_FLOAT;
};

}  // namespace

const std::vector<int>& cudnn_algorithms() {
  static const std::vector<int> algos = {CUDNN_RNN_ALGO_STANDARD, CUDNN_RNN_ALGO_PERSIST_STATIC,
                                         CUDNN_RNN_ALGO_PERSIST_DYNAMIC, CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H};
  return algos;
}

const char* cudnn_algorithm_name(int algo) {
  switch (algo) {
    case CUDNN_RNN_ALGO_STANDARD: return "STANDARD";
    case CUDNN_RNN_ALGO_PERSIST_STATIC: return "PERSIST_STATIC";
    case CUDNN_RNN_ALGO_PERSIST_DYNAMIC: return "PERSIST_DYNAMIC";
    case CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H: return "PERSIST_STATIC_SMALL_H";
  }
  return "?";
}

struct CudnnSession::Impl {
  cudnnHandle_t handle = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudaStream_t stream = nullptr;
};

CudnnSession::CudnnSession(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  BENCH_CUDNN_CHECK(cudnnCreate(&impl_->handle));
  BENCH_CUDNN_CHECK(cudnnSetStream(impl_->handle, stream));
  BENCH_CUDNN_CHECK(cudnnCreateDropoutDescriptor(&impl_->dropout));
  // No dropout: no states are needed (PyTorch's set_no_dropout does the same).
  BENCH_CUDNN_CHECK(cudnnSetDropoutDescriptor(impl_->dropout, impl_->handle, 0.0f, nullptr, 0, 0));
}

CudnnSession::~CudnnSession() {
  if (impl_->dropout) (void)cudnnDestroyDropoutDescriptor(impl_->dropout);
  if (impl_->handle) (void)cudnnDestroy(impl_->handle);
}

cudaStream_t CudnnSession::stream() const {
  return impl_->stream;
}

std::string CudnnSession::runtime_version() {
  const size_t v = cudnnGetVersion();  // major * 10000 + minor * 100 + patch (cuDNN 9)
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

std::string CudnnSession::header_version() {
  return std::to_string(CUDNN_MAJOR) + "." + std::to_string(CUDNN_MINOR) + "." + std::to_string(CUDNN_PATCHLEVEL);
}

namespace {

template <typename T>
class CudnnRunner final : public Runner {
 public:
  CudnnRunner(const Problem& p, Precision prec, int algo, CudnnLayout layout, bool training, CudnnSession& session,
              Arena* arena)
      : p_(p), arena_(arena), training_(training), handle_(session.impl()->handle), stream_(session.stream()) {
    const Shape& s = p.shape;
    const int D = p.directions();
    if (layout == CudnnLayout::kPacked) {
      packed_.emplace(make_packed_layout(p.lengths, s.T));
      const std::string why = packed_unsupported_reason(*packed_);
      if (!why.empty()) throw BenchUnsupported("cuDNN packed layout: " + why);
    }
    data_rows_ = packed_ ? packed_->rows() : s.T * s.B;
    states_ = static_cast<int64_t>(s.layers) * D * s.B * s.H;
    const cudnnDataType_t dt = CudnnType<T>::data;
    // FP32 without TF32: FMA only. TF32: default math lets cuDNN use TF32 tensor cores. bf16/fp16:
    // tensor cores (accumulating in float32, mathPrec FLOAT), as dynrnn's 16-bit GEMMs.
    const cudnnMathType_t math = prec == Precision::kFp32 ? CUDNN_FMA_MATH
                                 : is_16bit_v<T>          ? CUDNN_TENSOR_OP_MATH
                                                          : CUDNN_DEFAULT_MATH;
    cudnnRNNMode_t cell = CUDNN_LSTM;
    switch (s.cell) {
      case Cell::kLstm: cell = CUDNN_LSTM; break;
      case Cell::kGru:
        throw BenchUnsupported("cuDNN has no reset-before (TF GRUCell) GRU; its GRU is the reset-after cell gru_ra");
      // Keras GRUCell(reset_after=True) is CUDNN_GRU with both biases (CUDNN_RNN_DOUBLE_BIAS).
      case Cell::kGruResetAfter: cell = CUDNN_GRU; break;
      case Cell::kRnnTanh: cell = CUDNN_RNN_TANH; break;
      case Cell::kRnnRelu: cell = CUDNN_RNN_RELU; break;
    }
    BENCH_CUDNN_CHECK(cudnnCreateRNNDescriptor(&rnn_));
    BENCH_CUDNN_SETUP(cudnnSetRNNDescriptor_v8(
        rnn_, static_cast<cudnnRNNAlgo_t>(algo), cell, CUDNN_RNN_DOUBLE_BIAS,
        D == 2 ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, dt, CudnnType<T>::math, math,
        static_cast<int32_t>(s.I), static_cast<int32_t>(s.H), static_cast<int32_t>(s.H), s.layers,
        session.impl()->dropout, packed_ ? CUDNN_RNN_PADDED_IO_DISABLED : CUDNN_RNN_PADDED_IO_ENABLED));
    if (algo == CUDNN_RNN_ALGO_PERSIST_DYNAMIC) {
      BENCH_CUDNN_SETUP(cudnnBuildRNNDynamic(handle_, rnn_, static_cast<int>(s.B)));
    }

    // Packed: seqLengthArray lists the lengths in sorted (descending) order, the order of the packed
    // rows, and maxSeqLength is the longest one (as PyTorch sets them for a PackedSequence);
    // paddingFill applies to unpacked outputs only. Padded: batch order, T steps, padding 0.
    int max_len = static_cast<int>(s.T);
    const cudnnRNNDataLayout_t data_layout =
        packed_ ? CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED : CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
    void* fill = packed_ ? nullptr : &fill_;
    if (packed_) {
      seq_.assign(packed_->sorted_lengths.begin(), packed_->sorted_lengths.end());
      max_len = static_cast<int>(packed_->max_length());
    } else {
      seq_.assign(static_cast<size_t>(s.B), static_cast<int>(s.T));
      for (size_t b = 0; b < seq_.size(); ++b) seq_[b] = std::min<int>(p.lengths[b], static_cast<int>(s.T));
    }
    BENCH_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&x_desc_));
    BENCH_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&y_desc_));
    BENCH_CUDNN_SETUP(cudnnSetRNNDataDescriptor(x_desc_, dt, data_layout, max_len, static_cast<int>(s.B),
                                                static_cast<int>(s.I), seq_.data(), fill));
    BENCH_CUDNN_SETUP(cudnnSetRNNDataDescriptor(y_desc_, dt, data_layout, max_len, static_cast<int>(s.B),
                                                static_cast<int>(D * s.H), seq_.data(), fill));
    BENCH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&h_desc_));
    const int dims[3] = {s.layers * D, static_cast<int>(s.B), static_cast<int>(s.H)};
    const int strides[3] = {static_cast<int>(s.B * s.H), static_cast<int>(s.H), 1};
    BENCH_CUDNN_SETUP(cudnnSetTensorNdDescriptor(h_desc_, dt, 3, dims, strides));

    BENCH_CUDNN_SETUP(cudnnGetRNNWeightSpaceSize(handle_, rnn_, &weight_bytes_));
    size_t ws_inf = 0, rs_inf = 0, ws_train = 0;
    BENCH_CUDNN_SETUP(cudnnGetRNNTempSpaceSizes(handle_, rnn_, CUDNN_FWD_MODE_INFERENCE, x_desc_, &ws_inf, &rs_inf));
    if (training) {
      BENCH_CUDNN_SETUP(
          cudnnGetRNNTempSpaceSizes(handle_, rnn_, CUDNN_FWD_MODE_TRAINING, x_desc_, &ws_train, &reserve_bytes_));
    }
    work_bytes_ = std::max(ws_inf, ws_train);
    w_ = arena->alloc_bytes(weight_bytes_);
    if (training) dw_ = arena->alloc_bytes(weight_bytes_);
    work_ = arena->alloc_bytes(work_bytes_);
    if (training) reserve_ = arena->alloc_bytes(reserve_bytes_);

    load_weights();

    // devSeqLengths: a device copy of seqLengthArray (cuDNN reads it asynchronously).
    dev_seq_ = arena->alloc<int32_t>(s.B);
    std::vector<int32_t> seq32(seq_.begin(), seq_.end());
    arena->upload(dev_seq_, seq32.data(), seq32.size() * sizeof(int32_t));
    // Inputs and upstream gradients are put in this runner's layout here, once: packing is not part
    // of any timed call.
    for (const InputSet& in : p.sets) {
      Set set;
      set.x = arena->upload_as<T>(to_layout(in.x, s.I));
      if (training) set.dy = arena->upload_as<T>(to_layout(cudnn_join_outputs(p, in.dy_fw, in.dy_bw), D * s.H));
      sets_.push_back(set);
    }
    y_ = arena->alloc<T>(data_rows_ * D * s.H);
    hy_ = arena->alloc<T>(states_);
    if (s.cell == Cell::kLstm) cy_ = arena->alloc<T>(states_);
    if (training) {
      dx_ = arena->alloc<T>(data_rows_ * s.I);
      dhx_ = arena->alloc<T>(states_);
      if (s.cell == Cell::kLstm) dcx_ = arena->alloc<T>(states_);
    }
  }

  ~CudnnRunner() override {
    if (h_desc_) (void)cudnnDestroyTensorDescriptor(h_desc_);
    if (x_desc_) (void)cudnnDestroyRNNDataDescriptor(x_desc_);
    if (y_desc_) (void)cudnnDestroyRNNDataDescriptor(y_desc_);
    if (rnn_) (void)cudnnDestroyRNNDescriptor(rnn_);
  }

  void run(Mode mode, int set) override {
    const Set& s = sets_[static_cast<size_t>(set) % sets_.size()];
    switch (mode) {
      case Mode::kInference: forward(s, false); break;
      case Mode::kForward: forward(s, true); break;
      case Mode::kBackward: backward(sets_[0], s); break;  // reserve and y of set 0; dy rotates
      case Mode::kTraining:
        forward(s, true);
        backward(s, s);
        break;
    }
  }

  HostResult fetch(bool grads) override {
    arena_->sync();
    const Shape& s = p_.shape;
    HostResult r;
    cudnn_split_outputs(p_, download_data(y_, p_.directions() * s.H), &r.out_fw, &r.out_bw);
    const std::vector<double> hy = download_states(hy_);
    std::vector<double> cy;
    if (cy_) cy = download_states(cy_);
    r.final_state = cudnn_states_to_flat(p_, hy, cy_ ? &cy : nullptr);
    if (grads && training_) {
      r.has_grads = true;
      r.dx = download_data(dx_, s.I);
      zero_padding(p_, s.I, &r.dx);
      const std::vector<double> dhx = download_states(dhx_);
      std::vector<double> dcx;
      if (dcx_) dcx = download_states(dcx_);
      r.dinit = cudnn_states_to_flat(p_, dhx, dcx_ ? &dcx : nullptr);
      const std::vector<double> dspace =
          arena_->download_as<T>(static_cast<const T*>(dw_), static_cast<int64_t>(weight_bytes_ / sizeof(T)));
      r.dw.assign(static_cast<size_t>(p_.param_count), 0.0);
      for (const CudnnParam& m : params_) cudnn_grad_to_tf(p_, m, dspace.data(), &r.dw);
    }
    return r;
  }

  size_t workspace_bytes() const override { return work_bytes_; }
  size_t reserve_bytes() const override { return reserve_bytes_; }

 private:
  struct Set {
    T* x = nullptr;
    T* dy = nullptr;
  };

  /// A padded [T, B, width] tensor in this runner's data layout (packed: sorted and packed).
  std::vector<double> to_layout(const std::vector<double>& padded, int64_t width) const {
    return packed_ ? pack_rows(*packed_, padded, width) : padded;
  }

  /// A data tensor (y, dx) of this runner's layout -> padded [T, B, width] in batch order.
  std::vector<double> download_data(const T* buf, int64_t width) {
    std::vector<double> v = arena_->download_as<T>(buf, data_rows_ * width);
    return packed_ ? unpack_rows(*packed_, v, width) : v;
  }

  /// A state tensor (hy, cy, dhx, dcx) [L*D, B, H] -> the same in batch order: in the packed layout
  /// cuDNN indexes states by sorted position. (hx and cx are null, zero initial states, so nothing
  /// needs sorting on the way in; a non-zero hx would, as PyTorch's permute_hidden does.)
  std::vector<double> download_states(const T* buf) {
    std::vector<double> v = arena_->download_as<T>(buf, states_);
    return packed_ ? unsort_state_rows(*packed_, v, p_.shape.H) : v;
  }

  /// Finds every matrix and bias in the weight space and fills it from the TF weights.
  void load_weights() {
    const int D = p_.directions();
    const int lins = cudnn_lin_count(p_.shape.cell);
    std::vector<double> image(weight_bytes_ / sizeof(T), 0.0);
    cudnnTensorDescriptor_t m_desc = nullptr, b_desc = nullptr;
    BENCH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&m_desc));
    const cudnnStatus_t bst = cudnnCreateTensorDescriptor(&b_desc);
    if (bst != CUDNN_STATUS_SUCCESS) {
      (void)cudnnDestroyTensorDescriptor(m_desc);
      throw BenchError(std::string("cudnnCreateTensorDescriptor failed: ") + cudnnGetErrorString(bst));
    }
    struct Guard {
      cudnnTensorDescriptor_t a, b;
      ~Guard() {
        (void)cudnnDestroyTensorDescriptor(a);
        (void)cudnnDestroyTensorDescriptor(b);
      }
    } guard{m_desc, b_desc};
    for (int pl = 0; pl < p_.shape.layers * D; ++pl) {
      for (int lin = 0; lin < lins; ++lin) {
        void* m_addr = nullptr;
        void* b_addr = nullptr;
        BENCH_CUDNN_CHECK(
            cudnnGetRNNWeightParams(handle_, rnn_, pl, weight_bytes_, w_, lin, m_desc, &m_addr, b_desc, &b_addr));
        add_param(pl, lin, false, m_desc, m_addr);
        add_param(pl, lin, true, b_desc, b_addr);
      }
    }
    for (const CudnnParam& m : params_) tf_to_cudnn(p_, m, image.data());
    std::vector<T> cast(image.begin(), image.end());
    arena_->upload(w_, cast.data(), cast.size() * sizeof(T));
  }

  void add_param(int pl, int lin, bool bias, cudnnTensorDescriptor_t desc, void* addr) {
    cudnnDataType_t dt;
    int nb = 0;
    int dims[3] = {0, 0, 0}, strides[3] = {0, 0, 0};
    BENCH_CUDNN_CHECK(cudnnGetTensorNdDescriptor(desc, 3, &dt, &nb, dims, strides));
    if (nb == 0 || addr == nullptr) return;  // absent (e.g. no bias in this mode)
    if (dt != CudnnType<T>::data) {
      throw BenchError("cuDNN weight (pseudo layer " + std::to_string(pl) + ", lin " + std::to_string(lin) +
                       ") has data type " + std::to_string(static_cast<int>(dt)) + ", not the RNN's " +
                       std::to_string(static_cast<int>(CudnnType<T>::data)));
    }
    CudnnParam m;
    m.pseudo_layer = pl;
    m.lin = lin;
    m.bias = bias;
    m.rows = dims[1];
    m.cols = bias ? 1 : dims[2];
    if (nb != 3 || (!bias && (strides[2] != 1 || strides[1] != dims[2]))) {
      throw BenchError("cuDNN weight (pseudo layer " + std::to_string(pl) + ", lin " + std::to_string(lin) +
                       ") has an unexpected layout (nbDims " + std::to_string(nb) + ")");
    }
    const ptrdiff_t bytes = static_cast<const char*>(addr) - static_cast<const char*>(w_);
    if (bytes < 0 || static_cast<size_t>(bytes) + static_cast<size_t>(m.rows * m.cols) * sizeof(T) > weight_bytes_) {
      throw BenchError("cuDNN weight pointer outside the weight space");
    }
    if (bytes % static_cast<ptrdiff_t>(sizeof(T)) != 0) {
      throw BenchError("cuDNN weight pointer not aligned to its " + std::to_string(sizeof(T)) + "-byte elements");
    }
    m.offset = bytes / static_cast<ptrdiff_t>(sizeof(T));
    params_.push_back(m);
  }

  void forward(const Set& s, bool train) {
    if (train && !training_) throw BenchError("cuDNN runner was set up for inference only");
    BENCH_CUDNN_CHECK(cudnnRNNForward(handle_, rnn_, train ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                      dev_seq_, x_desc_, s.x, y_desc_, y_, h_desc_, nullptr, hy_, h_desc_, nullptr, cy_,
                                      weight_bytes_, w_, work_bytes_, work_, train ? reserve_bytes_ : 0,
                                      train ? reserve_ : nullptr));
  }

  void backward(const Set& fwd, const Set& up) {
    if (!training_) throw BenchError("cuDNN runner was set up for inference only");
    BENCH_CUDNN_CHECK(cudnnRNNBackwardData_v8(handle_, rnn_, dev_seq_, y_desc_, y_, up.dy, x_desc_, dx_, h_desc_,
                                              nullptr, nullptr, dhx_, h_desc_, nullptr, nullptr, dcx_, weight_bytes_,
                                              w_, work_bytes_, work_, reserve_bytes_, reserve_));
    // Weight gradients accumulate (CUDNN_WGRAD_MODE_ADD): clear them first, as a training step must.
    BENCH_CUDA_CHECK(cudaMemsetAsync(dw_, 0, weight_bytes_, stream_));
    BENCH_CUDNN_CHECK(cudnnRNNBackwardWeights_v8(handle_, rnn_, CUDNN_WGRAD_MODE_ADD, dev_seq_, x_desc_, fwd.x, h_desc_,
                                                 nullptr, y_desc_, y_, weight_bytes_, dw_, work_bytes_, work_,
                                                 reserve_bytes_, reserve_));
  }

  const Problem& p_;
  Arena* arena_;
  bool training_;
  cudnnHandle_t handle_;
  cudaStream_t stream_;
  cudnnRNNDescriptor_t rnn_ = nullptr;
  cudnnRNNDataDescriptor_t x_desc_ = nullptr, y_desc_ = nullptr;
  cudnnTensorDescriptor_t h_desc_ = nullptr;
  std::optional<PackedLayout> packed_;  ///< set for CudnnLayout::kPacked
  int64_t data_rows_ = 0;               ///< rows of x, y, dx: T * B padded, the sum of the lengths packed
  int64_t states_ = 0;                  ///< elements of hy, cy, dhx, dcx: L * D * B * H
  std::vector<int> seq_;
  // paddingFill is read as the data tensor's type: zero bytes are zero in every type, and eight of
  // them cover whatever width cuDNN reads.
  double fill_ = 0.0;
  // Set before any setup call (BENCH_CUDNN_SETUP reads it).
  const bool rejection_is_unsupported_ = is_16bit_v<T>;
  size_t weight_bytes_ = 0, work_bytes_ = 0, reserve_bytes_ = 0;
  void* w_ = nullptr;
  void* dw_ = nullptr;
  void* work_ = nullptr;
  void* reserve_ = nullptr;
  int32_t* dev_seq_ = nullptr;
  std::vector<CudnnParam> params_;
  std::vector<Set> sets_;
  T* y_ = nullptr;
  T* hy_ = nullptr;
  T* cy_ = nullptr;
  T* dx_ = nullptr;
  T* dhx_ = nullptr;
  T* dcx_ = nullptr;
};

}  // namespace

std::unique_ptr<Runner> make_cudnn_runner(const Problem& p, Precision prec, int algo, CudnnLayout layout, bool training,
                                          CudnnSession& session, Arena* arena) {
  return with_storage_type(prec, [&](auto tag) -> std::unique_ptr<Runner> {
    using T = typename decltype(tag)::type;
    return std::make_unique<CudnnRunner<T>>(p, prec, algo, layout, training, session, arena);
  });
}

double cudnn_t1_fixed_cost_us(CudnnSession& session, Arena* arena) {
  Shape s;
  s.id = "cudnn-T1";
  s.cell = Cell::kLstm;
  s.T = 1;
  s.B = 1;
  s.I = 64;
  s.H = 64;
  const Problem p = make_problem(s, 1, 1);
  auto runner =
      make_cudnn_runner(p, Precision::kFp32, CUDNN_RNN_ALGO_STANDARD, CudnnLayout::kPadded, false, session, arena);
  const std::vector<double> ms =
      time_gpu_ms(session.stream(), 20, 200, [&](int i) { runner->run(Mode::kInference, i); });
  return summarize(ms).median * 1e3;
}

}  // namespace bench
