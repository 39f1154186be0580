// tests/cuda_emulation/streams.cpp — the scheduler, streams, events, stream capture and graphs.
//
// Nothing runs when it is enqueued. Work runs when the host waits for it (a synchronizing call),
// and then in an adversarial order: of the stream heads whose dependencies are met, the one issued
// LAST runs first. Two pieces of work on different streams without an event between them therefore
// run in the opposite order of issue, so a missing dependency (read before write, or a buffer
// overwritten before it was read) changes results instead of going unnoticed. The environment
// variable DYNRNN_EMULATION_SCHEDULE=fifo runs them in issue order instead, and random:<seed> in a
// seeded random order.
#include <algorithm>
#include <cstdio>

#include "device_state.h"

namespace cuda_emulation {
namespace detail {
namespace {

void run_op(Op& op) {
  if (op.work && dev().sticky == cudaSuccess) {
    set_accessible(true);
    op.work();
  }
  op.token->done = true;
}

bool ready(const Op& op) {
  return std::all_of(op.deps.begin(), op.deps.end(), [](const Token& t) { return t->done; });
}

void invalidate(Capture* c) {
  c->invalidated = true;
}

void end_capture(Capture* c) {
  Device& d = dev();
  for (cudaStream_t s : c->members) {
    s->capture = nullptr;
    s->frontier.clear();
  }
  for (CUevent_st* e : d.events) {
    if (e->state == CUevent_st::State::kCaptured && e->capture == c) {
      e->state = CUevent_st::State::kCapturedEnded;
      e->capture = nullptr;
      e->nodes.clear();
    }
  }
  d.captures.erase(std::find_if(d.captures.begin(), d.captures.end(),
                                [c](const std::unique_ptr<Capture>& p) { return p.get() == c; }));
}

/// Runs a graph's nodes in a dependency-respecting order (the latest node among the ready ones first).
void run_graph(const std::vector<Node>& nodes) {
  std::vector<char> done(nodes.size(), 0);
  for (size_t remaining = nodes.size(); remaining > 0; --remaining) {
    size_t pick = nodes.size();
    for (size_t i = nodes.size(); i-- > 0;) {
      if (done[i]) continue;
      if (std::all_of(nodes[i].deps.begin(), nodes[i].deps.end(), [&](size_t j) { return done[j] != 0; })) {
        pick = i;
        break;
      }
    }
    if (nodes[pick].work) nodes[pick].work();
    done[pick] = 1;
  }
}

}  // namespace

void run_until(const std::function<bool()>& finished) {
  Device& d = dev();
  while (!finished()) {
    std::vector<CUstream_st*> candidates;
    for (CUstream_st* s : d.streams) {
      if (!s->queue.empty() && ready(s->queue.front())) candidates.push_back(s);
    }
    if (candidates.empty()) {
      std::fprintf(stderr, "cuda emulation: deadlock, pending work that can never run:\n");
      for (CUstream_st* s : d.streams) {
        if (!s->queue.empty())
          std::fprintf(stderr, "  stream %p: %s\n", static_cast<void*>(s), s->queue.front().what.c_str());
      }
      std::abort();
    }
    CUstream_st* pick = candidates.front();
    if (d.policy == Policy::kRandom) {
      pick = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(d.rng)];
    } else {
      for (CUstream_st* s : candidates) {
        const bool later = s->queue.front().seq > pick->queue.front().seq;
        if (d.policy == Policy::kLastIssuedFirst ? later : !later) pick = s;
      }
    }
    Op op = std::move(pick->queue.front());
    pick->queue.pop_front();
    run_op(op);
  }
  set_accessible(false);
}

bool stream_idle(const CUstream_st* s) {
  return s->queue.empty();
}

bool all_idle() {
  const Device& d = dev();
  return std::all_of(d.streams.begin(), d.streams.end(), [](const CUstream_st* s) { return s->queue.empty(); });
}

void enqueue_op(CUstream_st* st, std::string what, std::function<void()> work, std::vector<Token> extra) {
  Device& d = dev();
  Op op;
  op.what = std::move(what);
  op.work = std::move(work);
  op.deps = std::move(extra);
  const CUstream_st& legacy = d.legacy[st->device];
  if (st->legacy) {
    for (CUstream_st* s : d.streams) {
      if (s != st && s->device == st->device && s->blocking && s->tail && !s->tail->done) op.deps.push_back(s->tail);
    }
  } else if (st->blocking && legacy.tail && !legacy.tail->done) {
    op.deps.push_back(legacy.tail);
  }
  op.token = std::make_shared<Done>();
  op.seq = ++d.seq;
  st->tail = op.token;
  st->queue.push_back(std::move(op));
}

bool global_capture_active() {
  for (const auto& c : dev().captures) {
    if (c->mode == cudaStreamCaptureModeGlobal ||
        (c->mode == cudaStreamCaptureModeThreadLocal && c->thread == std::this_thread::get_id())) {
      return true;
    }
  }
  return false;
}

cudaError_t check_stream(cudaStream_t s) {
  if (s != nullptr && dev().streams.count(s) == 0) return cudaErrorInvalidResourceHandle;
  return cudaSuccess;
}

}  // namespace detail

using namespace detail;

int stream_device(cudaStream_t stream) {
  return resolve(stream)->device;
}

cudaError_t check_capture_safe(const char* api) {
  if (!global_capture_active()) return cudaSuccess;
  for (const auto& c : dev().captures) invalidate(c.get());
  std::fprintf(stderr, "cuda emulation: %s during stream capture invalidates the capture\n", api);
  return cudaErrorStreamCaptureUnsupported;
}

cudaError_t enqueue(cudaStream_t stream, std::string what, std::function<void()> work) {
  Device& d = dev();
  if (d.sticky != cudaSuccess) return d.sticky;
  if (cudaError_t e = check_stream(stream)) return e;
  CUstream_st* st = resolve(stream);
  if (st->capture != nullptr) {
    Capture* c = st->capture;
    if (c->invalidated) return cudaErrorStreamCaptureInvalidated;
    c->graph->nodes.push_back(Node{std::move(what), std::move(work), st->frontier});
    st->frontier = {c->graph->nodes.size() - 1};
    return cudaSuccess;
  }
  if (st->legacy && global_capture_active()) {
    for (const auto& c : d.captures) invalidate(c.get());
    return cudaErrorStreamCaptureImplicit;
  }
  enqueue_op(st, std::move(what), std::move(work), {});
  return cudaSuccess;
}

}  // namespace cuda_emulation

using namespace cuda_emulation;
using namespace cuda_emulation::detail;

// ---- streams -------------------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (stream == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto* s = new CUstream_st;
  s->device = current_device;
  s->blocking = (flags & cudaStreamNonBlocking) == 0;
  dev().streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

// A GPU dispatches the waiting blocks of higher-priority streams first; the emulation runs streams in
// its own adversarial order, which a priority does not change. The range is a Hopper's; a priority
// outside it is clamped, as CUDA does.
cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned flags, int /*priority*/) {
  return cudaStreamCreateWithFlags(stream, flags);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (stream == nullptr || dev().streams.count(stream) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (stream->capture != nullptr) EMU_RETURN(cudaErrorStreamCaptureUnsupported);
  // The stream's pending work still completes; running it now is one schedule the device may pick.
  run_until([stream] { return stream_idle(stream); });
  dev().streams.erase(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (resolve(stream)->capture != nullptr) {
    invalidate(resolve(stream)->capture);
    EMU_RETURN(cudaErrorStreamCaptureUnsupported);
  }
  if (cudaError_t e = check_capture_safe("cudaStreamSynchronize")) EMU_RETURN(e);
  CUstream_st* st = resolve(stream);
  run_until([st] { return stream_idle(st); });
  EMU_RETURN(sticky_error());
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned /*flags*/) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  Device& d = dev();
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (event == nullptr || d.events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (d.sticky) EMU_RETURN(d.sticky);
  CUstream_st* st = resolve(stream);
  using State = CUevent_st::State;
  if (event->state == State::kNever) return cudaSuccess;  // waiting on a never-recorded event is a no-op
  if (st->capture != nullptr) {
    if (event->state == State::kCaptured && event->capture == st->capture) {
      for (size_t n : event->nodes) {
        if (std::find(st->frontier.begin(), st->frontier.end(), n) == st->frontier.end()) st->frontier.push_back(n);
      }
      return cudaSuccess;
    }
    invalidate(st->capture);
    EMU_RETURN(event->state == State::kCaptured ? cudaErrorStreamCaptureMerge : cudaErrorStreamCaptureIsolation);
  }
  switch (event->state) {
    case State::kCaptured:  // the stream joins the capture, after the recorded nodes
      if (st->legacy) EMU_RETURN(cudaErrorStreamCaptureImplicit);
      st->capture = event->capture;
      st->frontier = event->nodes;
      event->capture->members.push_back(st);
      return cudaSuccess;
    case State::kCapturedEnded: EMU_RETURN(cudaErrorCapturedEvent);
    case State::kRecorded:
      if (st->legacy && global_capture_active()) EMU_RETURN(cudaErrorStreamCaptureImplicit);
      enqueue_op(st, "cudaStreamWaitEvent", nullptr, {event->token});
      return cudaSuccess;
    case State::kNever: break;
  }
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (stream == nullptr) EMU_RETURN(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  if (stream->capture != nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto c = std::make_unique<Capture>();
  c->origin = stream;
  c->mode = mode;
  c->thread = std::this_thread::get_id();
  c->members.push_back(stream);
  stream->capture = c.get();
  stream->frontier.clear();
  dev().captures.push_back(std::move(c));
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (graph == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *graph = nullptr;
  Capture* c = resolve(stream)->capture;
  if (c == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  if (c->origin != stream) EMU_RETURN(cudaErrorStreamCaptureUnmatched);
  if (c->invalidated) {
    end_capture(c);
    EMU_RETURN(cudaErrorStreamCaptureInvalidated);
  }
  // Every captured node must be joined back: an ancestor of (or in) the origin stream's frontier.
  const std::vector<Node>& nodes = c->graph->nodes;
  std::vector<char> joined(nodes.size(), 0);
  std::vector<size_t> todo = stream->frontier;
  while (!todo.empty()) {
    const size_t n = todo.back();
    todo.pop_back();
    if (joined[n]) continue;
    joined[n] = 1;
    for (size_t p : nodes[n].deps) todo.push_back(p);
  }
  if (std::find(joined.begin(), joined.end(), 0) != joined.end()) {
    end_capture(c);
    EMU_RETURN(cudaErrorStreamCaptureUnjoined);
  }
  *graph = c->graph.release();
  end_capture(c);
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (status == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  const Capture* c = resolve(stream)->capture;
  *status = c == nullptr     ? cudaStreamCaptureStatusNone
            : c->invalidated ? cudaStreamCaptureStatusInvalidated
                             : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

// ---- events --------------------------------------------------------------------------------------
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (event == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *event = new CUevent_st;
  (*event)->device = current_device;
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  dev().events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  EMU_LOCK();
  note_call(__func__);
  if (event == nullptr || dev().events.erase(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  delete event;  // waits already enqueued hold their own reference to the record
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  Device& d = dev();
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (event == nullptr || d.events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (d.sticky) EMU_RETURN(d.sticky);
  CUstream_st* st = resolve(stream);
  if (st->device != event->device) EMU_RETURN(cudaErrorInvalidResourceHandle);  // as CUDA: same device
  if (st->capture != nullptr) {
    if (st->capture->invalidated) EMU_RETURN(cudaErrorStreamCaptureInvalidated);
    event->state = CUevent_st::State::kCaptured;
    event->capture = st->capture;
    event->nodes = st->frontier;
    return cudaSuccess;
  }
  if (st->legacy && global_capture_active()) EMU_RETURN(cudaErrorStreamCaptureImplicit);
  auto reached = std::make_shared<std::chrono::steady_clock::time_point>();
  enqueue_op(st, "cudaEventRecord", [reached] { *reached = std::chrono::steady_clock::now(); }, {});
  event->reached = reached;
  event->state = CUevent_st::State::kRecorded;
  event->token = st->tail;
  event->capture = nullptr;
  event->nodes.clear();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  EMU_LOCK();
  note_call(__func__);
  if (event == nullptr || dev().events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (event->state == CUevent_st::State::kCaptured || event->state == CUevent_st::State::kCapturedEnded) {
    EMU_RETURN(cudaErrorCapturedEvent);
  }
  if (cudaError_t e = check_capture_safe("cudaEventSynchronize")) EMU_RETURN(e);
  if (event->state == CUevent_st::State::kRecorded) {
    const Token t = event->token;
    run_until([t] { return t->done; });
  }
  EMU_RETURN(sticky_error());
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  // The emulated device makes progress only when waited for, so a query waits (a poll loop ends).
  return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  EMU_LOCK();
  if (ms == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  for (cudaEvent_t e : {start, end}) {
    if (e == nullptr || dev().events.count(e) == 0 || !e->timing) EMU_RETURN(cudaErrorInvalidResourceHandle);
    if (e->state != CUevent_st::State::kRecorded) EMU_RETURN(cudaErrorInvalidResourceHandle);
    if (!e->token->done) EMU_RETURN(cudaErrorNotReady);
  }
  *ms = std::chrono::duration<float, std::milli>(*end->reached - *start->reached).count();
  return cudaSuccess;
}

// ---- graphs --------------------------------------------------------------------------------------
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  EMU_LOCK();
  note_call(__func__);
  if (exec == nullptr || graph == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (exec == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto nodes = std::make_shared<std::vector<Node>>(exec->nodes);  // the launch keeps what it runs
  EMU_RETURN(enqueue(stream, "cudaGraphLaunch", [nodes] { run_graph(*nodes); }));
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
