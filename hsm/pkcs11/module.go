// Loading, initialising and finalising PKCS#11 modules.
//
// PKCS#11 v2.40 §5.4 makes C_Initialize and C_Finalize process-wide: a
// second C_Initialize fails with CKR_CRYPTOKI_ALREADY_INITIALIZED, and one
// C_Finalize ends every session of the process. dlopen hands every caller
// of the same library the same instance. So the loaded modules are counted
// in the process-wide table below; it is the package's only global state,
// and it exists because the standard puts this state in the process.

package pkcs11

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// module is one loaded PKCS#11 library.
type module struct {
	ctx  *p11.Ctx
	key  string // entry in modules.m
	refs int
	// owned is false if something outside this package had already
	// initialised the library; then this package never finalises it.
	owned bool
}

// modules counts the users of each loaded library, by resolved path.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: make(map[string]*module)}

// acquireModule loads and initialises the library at path, or takes
// another reference to it. Errors wrap ErrModule.
func acquireModule(path string) (*module, error) {
	key := path
	if strings.ContainsRune(path, '/') {
		// A bare file name is searched for by dlopen; a path must exist.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrModule, path, err)
		}
		if abs, err := filepath.Abs(path); err == nil {
			key = abs
		}
		if real, err := filepath.EvalSymlinks(key); err == nil {
			key = real
		}
	}
	modules.Lock()
	defer modules.Unlock()
	if m := modules.m[key]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w %q: cannot load it as a PKCS#11 library (not a shared library with C_GetFunctionList, wrong architecture, or a missing dependency)", ErrModule, path)
	}
	m := &module{ctx: ctx, key: key, refs: 1, owned: true}
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("%w %q: C_Initialize: %w", ErrModule, path, err)
		}
		m.owned = false
	}
	modules.m[key] = m
	return m, nil
}

// release drops a reference taken by acquireModule. It first calls
// cleanup, with last set if this is the last reference, while holding the
// table's lock, so no one can acquire the module meanwhile. After the last
// reference the library is finalised and unloaded.
func (m *module) release(cleanup func(last bool)) error {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if cleanup != nil {
		cleanup(m.refs == 0)
	}
	if m.refs > 0 {
		return nil
	}
	delete(modules.m, m.key)
	var err error
	if m.owned {
		if ferr := m.ctx.Finalize(); ferr != nil {
			err = fmt.Errorf("pkcs11: C_Finalize: %w", ferr)
		}
	}
	m.ctx.Destroy()
	return err
}
