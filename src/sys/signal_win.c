/* placeholder */
#include "../signals.h"
