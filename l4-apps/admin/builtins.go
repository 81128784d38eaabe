package admin

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.starlark.net/starlark"
)

// builtins are the only names a command sees (with Starlark's own
// universe: len, range, str, sorted...).
func (a *Admin) builtins() starlark.StringDict {
	h := a.cfg.Host
	fn := func(name string, f func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			return f(args, kw)
		})
	}
	noArgs := func(name string, get func() (any, error)) *starlark.Builtin {
		return fn(name, func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs(name, args, kw, 0); err != nil {
				return nil, err
			}
			v, err := get()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			return toStarlark(v)
		})
	}
	return starlark.StringDict{
		"status": noArgs("status", func() (any, error) { return h.Status() }),
		"peers":  noArgs("peers", func() (any, error) { return h.Peers() }),
		"trees":  noArgs("trees", func() (any, error) { return h.Trees() }),
		"stats":  noArgs("stats", func() (any, error) { return h.Stats() }),
		"config_get": fn("config_get", func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var key string
			if err := starlark.UnpackArgs("config_get", args, kw, "key", &key); err != nil {
				return nil, err
			}
			v, err := h.ConfigGet(key)
			if err != nil {
				return nil, fmt.Errorf("config_get: %v", err)
			}
			return starlark.String(v), nil
		}),
		"config_set": fn("config_set", func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var key, value string
			if err := starlark.UnpackArgs("config_set", args, kw, "key", &key, "value", &value); err != nil {
				return nil, err
			}
			if err := h.ConfigSet(key, value); err != nil {
				return nil, fmt.Errorf("config_set: %v", err)
			}
			return starlark.None, nil
		}),
		"ping": fn("ping", func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var target string
			timeout := 5.0
			if err := starlark.UnpackArgs("ping", args, kw, "target", &target, "timeout?", &timeout); err != nil {
				return nil, err
			}
			if timeout <= 0 || timeout > 30 {
				return nil, fmt.Errorf("ping: timeout %g s: (0, 30]", timeout)
			}
			rtt, err := h.Ping(target, time.Duration(timeout*float64(time.Second)))
			if err != nil {
				return nil, fmt.Errorf("ping: %v", err)
			}
			return starlark.Float(rtt), nil
		}),
		"send": fn("send", func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var target, app, data string
			if err := starlark.UnpackArgs("send", args, kw, "target", &target, "app", &app, "data", &data); err != nil {
				return nil, err
			}
			if len(data) > 4096 {
				return nil, fmt.Errorf("send: %d bytes, at most 4,096 from here", len(data))
			}
			if err := h.Send(target, app, []byte(data)); err != nil {
				return nil, fmt.Errorf("send: %v", err)
			}
			return starlark.None, nil
		}),
		"link_up":   linkFn("link_up", h.LinkUp),
		"link_down": linkFn("link_down", h.LinkDown),
		"log_level": fn("log_level", func(args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var level string
			if err := starlark.UnpackArgs("log_level", args, kw, "level", &level); err != nil {
				return nil, err
			}
			if err := h.LogLevel(level); err != nil {
				return nil, fmt.Errorf("log_level: %v", err)
			}
			return starlark.None, nil
		}),
	}
}

func linkFn(name string, f func(int) error) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		var i int
		if err := starlark.UnpackArgs(name, args, kw, "index", &i); err != nil {
			return nil, err
		}
		if err := f(i); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return starlark.None, nil
	})
}

// toStarlark converts what a Host returns: maps, slices, strings,
// numbers, booleans, nil.
func toStarlark(v any) (starlark.Value, error) {
	switch x := v.(type) {
	case nil:
		return starlark.None, nil
	case starlark.Value:
		return x, nil
	case string:
		return starlark.String(x), nil
	case bool:
		return starlark.Bool(x), nil
	case int:
		return starlark.MakeInt(x), nil
	case int64:
		return starlark.MakeInt64(x), nil
	case uint64:
		return starlark.MakeUint64(x), nil
	case float64:
		return starlark.Float(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return starlark.MakeInt64(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return starlark.Float(f), nil
	case []any:
		l := make([]starlark.Value, 0, len(x))
		for _, e := range x {
			sv, err := toStarlark(e)
			if err != nil {
				return nil, err
			}
			l = append(l, sv)
		}
		return starlark.NewList(l), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(x))
		for _, k := range keys {
			sv, err := toStarlark(x[k])
			if err != nil {
				return nil, err
			}
			d.SetKey(starlark.String(k), sv)
		}
		return d, nil
	case map[string]uint64:
		m := make(map[string]any, len(x))
		for k, n := range x {
			m[k] = n
		}
		return toStarlark(m)
	}
	return nil, fmt.Errorf("admin: no Starlark value for %T", v)
}
