#define FIXTURE_ID "fixture-swap"
#define FIXTURE_VERSION "2.0.0"
#define FIXTURE_GENERATION 2
#include "../fixture_plugin.h"
