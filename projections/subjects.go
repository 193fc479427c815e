package projections

import (
	"maps"
	"strings"

	"github.com/kmsledger/kmsledger/ledger"
)

// The last sequence of every LEDGER subject is what a writer expects when
// it appends to that aggregate (commands, decide.go). A live key's is in
// its Key (a million keys then need no map of a million subject strings);
// every other subject's, a deleted key's too, is in State.subjects. A key
// that leaves its enclave without an event on its own subject (its
// enclave deleted, or dropped by a snapshot delta's merge) leaves its
// sequence in the map (retire).

// LastSeq returns the sequence of the last event on subject, 0 if none.
func (s *State) LastSeq(subject string) uint64 {
	if k := s.keyOfSubject(subject); k != nil {
		return k.seq
	}
	return s.subjects[subject]
}

// SubjectsAt returns the stream sequence as of which LastSeq answers
// (ledger.Expect.At): s.Seq, or 0 on a state of time travel, which knows
// no subject's sequence.
func (s *State) SubjectsAt() uint64 {
	if s.past {
		return 0
	}
	return s.Seq
}

// setSeq records seq as the last sequence of subject. Only events with a
// sequence call it, never a fork's, so the map is the state's own.
func (s *State) setSeq(subject string, seq uint64) {
	if k := s.keyOfSubject(subject); k != nil {
		k.seq = seq
		delete(s.subjects, subject) // from before the key was created again, if any
		return
	}
	s.subjects[subject] = seq
}

// retireKeys moves the sequences of e's keys into the map, before e is
// deleted or replaced.
func (s *State) retireKeys(e *Enclave) {
	for _, k := range e.Keys {
		s.retire(e.Name, k)
	}
}

// retire moves k's sequence (k of enclave) into the map, before k leaves
// the state other than by an event on its subject.
func (s *State) retire(enclave string, k *Key) {
	if k.seq != 0 {
		s.ownSubjects()
		s.subjects[ledger.KeySubject(enclave, k.Name)] = k.seq
	}
}

// ownSubjects makes a fork's map its own before it changes it.
func (s *State) ownSubjects() {
	if s.subjectsShared {
		s.subjects, s.subjectsShared = maps.Clone(s.subjects), false
	}
}

// forgetSubjects drops every subject's sequence: a past state holds none
// (the bookkeeping of writers on the live state, not a fact of the past).
func (s *State) forgetSubjects() {
	clear(s.subjects)
	for _, e := range s.Enclaves {
		for _, k := range e.Keys {
			k.seq = 0
		}
	}
}

// liveKeySubject reports whether subj is the subject of a key of s, which
// is written with the key.
func (s *State) liveKeySubject(subj string) bool {
	return s.keyOfSubject(subj) != nil
}

// keyOfSubject returns the key of s whose subject subj is, or nil if no
// key of s has it.
func (s *State) keyOfSubject(subj string) *Key {
	rest, ok := strings.CutPrefix(subj, "ledger.")
	if !ok {
		return nil
	}
	enclave, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return nil
	}
	name, ok := strings.CutPrefix(rest, "key.")
	if !ok {
		return nil
	}
	if e := s.Enclaves[enclave]; e != nil {
		return e.Keys[name]
	}
	return nil
}
