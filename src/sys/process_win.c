/* placeholder */
#include "../common.h"
