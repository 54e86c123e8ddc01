#define FIXTURE_ID "fixture-abi-v2"
#define FIXTURE_ABI_MAJOR 2
#define FIXTURE_ENTRY orion_plugin_v2_entry
#include "../fixture_plugin.h"
