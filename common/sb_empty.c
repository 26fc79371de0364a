/* sb_empty - an empty translation unit so that a stage's core library always has a
 * source, even before the stage has files of its own. */
#include "sb_err.h"
