import picomatch from 'picomatch';
import { actionMatches, isActionPattern, type Action } from './actions';

/** One rule of a policy: allow or deny these actions on streams matching these globs. */
export interface Rule {
  effect: 'allow' | 'deny';
  /** Actions ("stream:read"), "stream:*" for a family, or "*" for all. */
  actions: string[];
  /** Stream path globs: "/tenants/acme/**" covers /tenants/acme and everything under it. */
  streams: string[];
}

/** A principal's rules. */
export interface Policy {
  principal: string;
  rules: Rule[];
}

/** The outcome of checking one permission, with the reason for the logs. */
export type Decision = { allowed: true } | { allowed: false; reason: 'denied by rule' | 'no rule allows it' };

/** A policy compiled for fast checks: the globs are turned into matchers once. */
export class CompiledPolicy {
  private readonly rules: Array<{ effect: Rule['effect']; actions: string[]; matches: (path: string) => boolean }>;

  constructor(readonly policy: Policy) {
    this.rules = policy.rules.map((rule) => ({
      effect: rule.effect,
      actions: rule.actions,
      // dot: a path segment may start with "." ("/a/.b" is a valid stream).
      matches: picomatch(rule.streams, { dot: true }),
    }));
  }

  /** An explicit deny wins over any allow; without a matching allow the answer is no. */
  decide(action: Action, resource: string): Decision {
    let allowed = false;
    for (const rule of this.rules) {
      if (!rule.actions.some((pattern) => actionMatches(pattern, action)) || !rule.matches(resource)) continue;
      if (rule.effect === 'deny') return { allowed: false, reason: 'denied by rule' };
      allowed = true;
    }
    return allowed ? { allowed: true } : { allowed: false, reason: 'no rule allows it' };
  }
}

/** Why a rule is invalid, or undefined. */
export function ruleProblem(rule: Rule): string | undefined {
  if (rule.effect !== 'allow' && rule.effect !== 'deny') return 'effect must be "allow" or "deny"';
  if (rule.actions.length === 0) return 'needs at least one action';
  const unknown = rule.actions.find((action) => !isActionPattern(action));
  if (unknown !== undefined) return `unknown action "${unknown}"`;
  if (rule.streams.length === 0) return 'needs at least one stream glob';
  const relative = rule.streams.find((glob) => !glob.startsWith('/'));
  if (relative !== undefined) return `stream glob "${relative}" must start with "/"`;
  return undefined;
}

/**
 * Parses a rule written on the command line: "ACTIONS=GLOBS" with comma-separated lists, e.g.
 * "stream:read,stream:append=/tenants/acme/**".
 */
export function parseRule(effect: Rule['effect'], text: string): Rule {
  const cut = text.lastIndexOf('=');
  if (cut < 0) throw new Error(`rule "${text}" must be ACTIONS=GLOBS, e.g. stream:read=/tenants/acme/**`);
  const split = (part: string) => part.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const rule: Rule = { effect, actions: split(text.slice(0, cut)), streams: split(text.slice(cut + 1)) };
  const problem = ruleProblem(rule);
  if (problem) throw new Error(`rule "${text}": ${problem}`);
  return rule;
}
