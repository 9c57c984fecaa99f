// What every error answer's content type is (RFC 9457), spelled out here rather than imported from the
// service, so a change to the service's constant is a failing test and not a silent agreement.
export const PROBLEM = 'application/problem+json; charset=utf-8';
