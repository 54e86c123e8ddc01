#define FIXTURE_ID "fixture-toolchain"
#define FIXTURE_TOOLCHAIN "swift-5.9.0"
#include "../fixture_plugin.h"
