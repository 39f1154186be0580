// host/status_macros.h — early return on failure.
#pragma once

#include "dynrnn/status.h"

#define DYNRNN_TRY(expr)                 \
  do {                                   \
    ::dynrnn::Status dynrnn_s_ = (expr); \
    if (!dynrnn_s_) return dynrnn_s_;    \
  } while (0)
