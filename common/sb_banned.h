/* sb_banned - functions that are too easy to misuse (git banned.h). Include last. */
#ifndef SB_BANNED_H
#define SB_BANNED_H

#define SB_BANNED(func) sorry_##func##_is_banned_in_switchboard

#undef strcpy
#define strcpy(x, y) SB_BANNED(strcpy)
#undef strcat
#define strcat(x, y) SB_BANNED(strcat)
#undef sprintf
#define sprintf(...) SB_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) SB_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) SB_BANNED(strtok)
#undef atoi
#define atoi(x) SB_BANNED(atoi)
#undef atol
#define atol(x) SB_BANNED(atol)

#endif
