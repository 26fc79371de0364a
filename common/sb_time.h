/* sb_time - the wall clock in milliseconds, one definition for every stage. */
#ifndef SB_TIME_H
#define SB_TIME_H
#include <stdint.h>

// Milliseconds since 1970 (CLOCK_REALTIME): what envelopes, spool records and provider
// expiry times are stamped with, so it is comparable across processes.
int64_t sb_wall_ms(void);

#endif
