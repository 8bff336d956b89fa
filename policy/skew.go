package policy

// FutureSkew is how far ahead of the clock a message's Date may be: the
// policy denies sending a message dated later, and a receiver sets such a
// message aside (agents.Runtime), by the one rule.
const FutureSkew = futureSkew
