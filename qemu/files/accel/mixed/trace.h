#include "trace/trace-accel_mixed.h"
