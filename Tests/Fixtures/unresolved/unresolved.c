#define FIXTURE_ID "fixture-unresolved"
#define FIXTURE_UNRESOLVED 1
#include "../fixture_plugin.h"
