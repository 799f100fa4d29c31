package memory

import "github.com/sessionx/sessions/backend"

var _ backend.InProcess = (*Store)(nil)

// InProcess reports that the store keeps its bytes in this process's memory
// only, so the sessions core leaves them unsealed (see backend.InProcess),
// unless Options.Seal asked for sealing.
func (s *Store) InProcess() bool { return !s.seal }
