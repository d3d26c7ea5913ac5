package sandbox

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if IsLauncher(os.Args) {
		RunLauncher()
	}
	os.Exit(m.Run())
}
