/* sb_time - the wall and monotonic clocks, one definition for every stage. */
#ifndef SB_TIME_H
#define SB_TIME_H
#include <stdint.h>

// Milliseconds since 1970 (CLOCK_REALTIME): what envelopes, spool records and provider
// expiry times are stamped with, so it is comparable across processes.
int64_t sb_wall_ms(void);

// Milliseconds of CLOCK_MONOTONIC: for timeouts, deadlines and durations within one
// process, immune to changes of the wall clock.
int64_t sb_mono_ms(void);

// Seconds of CLOCK_MONOTONIC with their fraction: for measuring durations (histograms,
// rates).
double sb_mono_s(void);

#endif
