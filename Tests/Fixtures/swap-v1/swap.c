#define FIXTURE_ID "fixture-swap"
#define FIXTURE_VERSION "1.0.0"
#define FIXTURE_GENERATION 1
#include "../fixture_plugin.h"
