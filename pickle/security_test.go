package pickle

import (
	"bytes"
	"errors"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// codePickles are well-formed pickles that make Python's pickle.loads
// import, build or call something (most of them run a shell command), one
// or more for each opcode that can, with the opcode the decoder must
// refuse.
var codePickles = []struct {
	name, data, op string
}{
	{"GLOBAL os.system, REDUCE (protocol 0)", "cos\nsystem\n(Vtouch /tmp/pwned\ntR.", "GLOBAL"},
	{"GLOBAL posix.system, REDUCE", "\x80\x02cposix\nsystem\nX\x10\x00\x00\x00touch /tmp/pwned\x85R.", "GLOBAL"},
	{"GLOBAL builtins.eval", "\x80\x03cbuiltins\neval\nX\x0a\x00\x00\x00print('x')\x85R.", "GLOBAL"},
	{"GLOBAL builtins.__import__", "\x80\x03cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R.", "GLOBAL"},
	{"GLOBAL builtins.getattr", "\x80\x03cbuiltins\ngetattr\n.", "GLOBAL"},
	{"GLOBAL copyreg._reconstructor", "\x80\x02ccopyreg\n_reconstructor\n.", "GLOBAL"},
	{"STACK_GLOBAL os.system, REDUCE", "\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x10touch /tmp/pwned\x85R.", "STACK_GLOBAL"},
	{"STACK_GLOBAL subprocess.Popen", "\x80\x04\x8c\x0asubprocess\x8c\x05Popen\x93.", "STACK_GLOBAL"},
	{"STACK_GLOBAL of an allowed name, not REDUCE'd", "\x80\x04\x8c\x08builtins\x8c\x03set\x93.", "STOP"},
	{"INST os.system", "(Vtouch /tmp/pwned\nios\nsystem\n.", "INST"},
	{"INST builtins.set", "(ibuiltins\nset\n.", "INST"},
	{"OBJ builtins.set", "(cbuiltins\nset\no.", "OBJ"},
	{"NEWOBJ builtins.set", "\x80\x02cbuiltins\nset\n)\x81.", "NEWOBJ"},
	{"NEWOBJ_EX builtins.set", "\x80\x04\x8c\x08builtins\x8c\x03set\x93)}\x92.", "NEWOBJ_EX"},
	{"BUILD on a list", "\x80\x02]}b.", "BUILD"},
	{"EXT1", "\x80\x02\x82\x01.", "EXT1"},
	{"EXT2", "\x80\x02\x83\x01\x00.", "EXT2"},
	{"EXT4", "\x80\x02\x84\x01\x00\x00\x00.", "EXT4"},
	{"PERSID", "Pos.system\n.", "PERSID"},
	{"BINPERSID", "\x80\x02X\x09\x00\x00\x00os.systemQ.", "BINPERSID"},
	{"os.system deep in a dict", "\x80\x04}\x8c\x01k](\x8c\x02os\x8c\x06system\x93\x8c\x10touch /tmp/pwned\x85Res.", "STACK_GLOBAL"},
}

// TestSecurityNeverExecutes: every pickle that would make Python import,
// build or call something is refused with ErrUnsafe, in an *OpError that
// names the opcode, by the decoder with the default limits, with the
// manager's classes allowed as Objects, and through Codec; whatever the
// target. The pickles are well-formed (pickletools, which runs nothing,
// reads each to its end), so the refusal is the opcode's.
func TestSecurityNeverExecutes(t *testing.T) {
	decoders := map[string]func(data []byte, v any) error{
		"Decoder":                   Decoder{}.Unmarshal,
		"Decoder with Objects":      Decoder{Objects: managerObjects}.Unmarshal,
		"Codec":                     Codec{}.Unmarshal,
		"Unmarshal":                 Unmarshal,
		"Decoder with small limits": Decoder{MaxSize: 1 << 10, MaxDepth: 4}.Unmarshal,
	}
	for _, p := range codePickles {
		t.Run(p.name, func(t *testing.T) {
			for _, name := range slices.Sorted(maps.Keys(decoders)) {
				for _, target := range []any{new(any), new(Object), new([]any), new(map[string]any)} {
					err := decoders[name]([]byte(p.data), target)
					var oe *OpError
					if !errors.Is(err, ErrUnsafe) || !errors.As(err, &oe) || !strings.Contains(err.Error(), p.op) {
						t.Errorf("%s into %T: %v; want ErrUnsafe at %s", name, target, err, p.op)
					}
				}
			}
		})
	}

	t.Run("well-formed", func(t *testing.T) {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Fatal("python3 is required to check the pickles are well-formed")
		}
		const script = `
import io, pickletools, sys
bad = 0
for line in sys.stdin.read().split():
    try:
        pickletools.dis(bytes.fromhex(line), out=io.StringIO())
    except Exception as e:
        print(line, e)
        bad += 1
sys.exit(bad)
`
		var in bytes.Buffer
		for _, p := range codePickles {
			in.WriteString(hexOf(p.data) + "\n")
		}
		cmd := exec.Command(py, "-c", script)
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pickletools: %v\n%s", err, out)
		}
	})
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}
