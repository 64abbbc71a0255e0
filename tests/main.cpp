// The unit test runner (doctest). Individual suites live beside the code
// they test: tests/<folder>/<Class>_test.cpp mirrors src/<folder>/<Class>.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
