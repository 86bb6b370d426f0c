package pickle

import (
	"encoding/json"
	"testing"
)

type benchJob struct {
	ID    int               `json:"id" pickle:"id"`
	Name  string            `json:"name" pickle:"name"`
	Tags  []string          `json:"tags" pickle:"tags"`
	Score float64           `json:"score" pickle:"score"`
	Attrs map[string]string `json:"attrs" pickle:"attrs"`
}

var benchValues = map[string]any{
	"struct": &benchJob{7, "widget", []string{"a", "b", "c"}, 0.5, map[string]string{"k": "v", "x": "y"}},
	"ints": func() []int {
		s := make([]int, 1000)
		for i := range s {
			s[i] = i * 1000
		}
		return s
	}(),
}

// BenchmarkCodecs compares pickle with encoding/json (mproc's default
// codec) on the same values, both directions.
func BenchmarkCodecs(b *testing.B) {
	for name, v := range benchValues {
		for _, c := range []struct {
			name      string
			marshal   func(any) ([]byte, error)
			unmarshal func([]byte, any) error
		}{
			{"pickle", Marshal, Unmarshal},
			{"json", json.Marshal, json.Unmarshal},
		} {
			data, err := c.marshal(v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(name+"/"+c.name+"/marshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := c.marshal(v); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/"+c.name+"/unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var out any
					switch v.(type) {
					case *benchJob:
						out = new(benchJob)
					default:
						out = new([]int)
					}
					if err := c.unmarshal(data, out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
