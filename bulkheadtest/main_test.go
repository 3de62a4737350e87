package bulkheadtest_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
)

func TestMain(m *testing.M) { bulkheadtest.Main(m) }
