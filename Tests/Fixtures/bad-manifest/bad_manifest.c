#define FIXTURE_ID "fixture-bad-manifest"
#define FIXTURE_MANIFEST "{\"capabilities\": [\"rate_limit\"], not json"
#include "../fixture_plugin.h"
