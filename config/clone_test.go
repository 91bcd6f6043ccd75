package config

import (
	"reflect"
	"testing"
)

// Clone shares no slice with the original, for every slice field there
// is (a field added later without a line in Clone fails here).
func TestCloneIsDeep(t *testing.T) {
	c := DefaultConfig()
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Slice && f.CanSet() {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	c.ignored = make([]Line, 1) // unexported: reflect cannot set it
	d := c.Clone()
	w := reflect.ValueOf(d).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Kind() != reflect.Slice {
			continue
		}
		if v.Field(i).Pointer() == w.Field(i).Pointer() {
			t.Errorf("Clone shares the slice of field %s", v.Type().Field(i).Name)
		}
	}
	if !reflect.DeepEqual(c, d) {
		t.Error("Clone differs from the original")
	}
}
