package yamlfield

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// CheckKeys walks the YAML node n against the Go type t (a struct, usually)
// and reports, with line and dotted path, every mapping key that t does not
// declare and every value of the wrong kind: a mapping where a list belongs,
// text where a number, a boolean or a duration belongs. Field names come from
// the tag named by tag ("yaml" or "mapstructure"). A document that passes
// decodes without type errors.
func CheckKeys(file string, n *yaml.Node, t reflect.Type, tag string) []error {
	var errs []error
	checkKeys(file, n, t, tag, "", &errs)
	return errs
}

var durationType = reflect.TypeOf(Duration(0))

func checkKeys(file string, n *yaml.Node, t reflect.Type, tag, path string, errs *[]error) {
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			checkKeys(file, c, t, tag, path, errs)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fail := func(format string, args ...any) {
		*errs = append(*errs, &FieldError{File: file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			fail("must be a duration such as 30s or 25d")
		} else if _, err := ParseDuration(n.Value); err != nil {
			fail("%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping of keys to values, not %s", kindName(n))
			return
		}
		fields := structFields(t, tag)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			p := join(path, k.Value)
			if !ok {
				*errs = append(*errs, &FieldError{File: file, Line: k.Line, Field: p,
					Msg: fmt.Sprintf("unknown key (expected one of: %s)", strings.Join(sortedKeys(fields), ", "))})
				continue
			}
			checkKeys(file, v, ft, tag, p, errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			fail("must be a list, as in [a, b], not %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			checkKeys(file, c, t.Elem(), tag, path+"["+strconv.Itoa(i)+"]", errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping of keys to values, not %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(file, n.Content[i+1], t.Elem(), tag, join(path, n.Content[i].Value), errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			fail("must be a single value, not %s", kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			fail("must be true or false, not %s", kindName(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			fail("must be a whole number, not %s", kindName(n))
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func structFields(t reflect.Type, tag string) map[string]reflect.Type {
	type key struct {
		t   reflect.Type
		tag string
	}
	if m, ok := fieldCache.Load(key{t, tag}); ok {
		return m.(map[string]reflect.Type)
	}
	m := buildStructFields(t, tag)
	fieldCache.Store(key{t, tag}, m)
	return m
}

// fieldCache holds structFields' maps, by type and tag: built once, read
// by every check (a start with 100,000 property files checks as many
// documents). The maps are never written once stored.
var fieldCache sync.Map

func buildStructFields(t reflect.Type, tag string) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get(tag), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Line returns the line of the value at path in the YAML document n, where
// path elements are mapping keys (string) or sequence indexes (int). When the
// full path is absent it returns the line of the deepest node found, so an
// error about a missing field still points near its place; 0 if n is nil.
func Line(n *yaml.Node, path ...any) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}
