// bench/rows.h — filling a report Row from a shape, a work model and timing samples (shared by
// the CPU and GPU paths), and the verification-reference bookkeeping.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/flops.h"
#include "bench/problem.h"
#include "bench/report.h"
#include "bench/stats.h"

namespace bench {

/// The note of a baseline's row on a --dropout shape.
constexpr const char* kNoDropoutWrapper = "no DropoutWrapper here: --dropout shapes run dynrnn only";

/// Shape, precision, mode and implementation columns, plus the command line that reproduces it.
Row base_row(const Problem& p, Precision prec, Mode mode, const std::string& impl, const std::string& variant,
             bool gpu);

/// Adds `note` to the row's note column, after a "; " when it already says something.
void add_note(Row& r, const std::string& note);

/// The work-model input of the model a problem runs: layer l > 0 reads D*H inputs for a stacked
/// shape (stack_bidirectional, cuDNN's and PyTorch's stacks), H for TF's independent stacks.
WorkInput work_input(const Problem& p, Mode mode, Precision prec);
/// The same with the stacking forced (concat_layers: cuDNN-style stacks): what cuDNN executes for
/// TF's independent stacks mapped with zero blocks.
WorkInput work_input(const Problem& p, Mode mode, Precision prec, bool concat_layers);

/// Timing columns, FLOP rates and (when `roofline`) the §2.5 columns.
void fill_timing(Row& r, const std::vector<double>& samples_ms, const WorkModel& w, int layers, bool roofline);

/// Times `fn(i)` with the host clock: `warmup` untimed calls, then `iters` calls timed one by one.
std::vector<double> time_host_ms(int warmup, int iters, const std::function<void(int)>& fn);

/// The verification run of a mode: what to execute once before timing and whether it yields
/// gradients. backward and training verify a full training step (forward + backward).
Mode verification_mode(Mode m);

/// Which float64 reference verifies a precision's rows: fp32, tf32 and fp64 share the reference of
/// the problem's data (key kFp64); bf16 and fp16 each have the reference of their rounded data
/// (rounded_problem), so the key is the precision itself.
Precision reference_key(Precision p);
/// The verify_ref column: the reference's name, plus the rounding of its data for 16-bit rows.
std::string reference_label(const std::string& reference, Precision p);

}  // namespace bench
