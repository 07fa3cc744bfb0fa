//! Union-find over dense `u32` node ids, where each component holds at most one user.

/// "No value" for dense ids.
pub use crate::codes::NONE;

/// Disjoint sets with path halving and union by size. Every root carries the user of its
/// component (or [`NONE`]); a union that would put two different users together is refused.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
    user: Vec<u32>,
}

/// What a union did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Union {
    /// The two nodes were already in one component.
    Same,
    /// Two components became one.
    Merged,
    /// The components hold different users: nothing was changed.
    Refused,
}

impl UnionFind {
    /// `n` singleton nodes; `user[i]` is the user node `i` stands for, or [`NONE`].
    pub fn new(user: Vec<u32>) -> Self {
        let n = user.len();
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            user,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The root of `x`'s component.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// The user of `x`'s component, or [`NONE`].
    pub fn user_of(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.user[r as usize]
    }

    /// Join the components of `a` and `b` unless that would join two different users.
    pub fn union(&mut self, a: u32, b: u32) -> Union {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Union::Same;
        }
        let (ua, ub) = (self.user[ra as usize], self.user[rb as usize]);
        if ua != NONE && ub != NONE && ua != ub {
            return Union::Refused;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        self.user[big as usize] = if ua != NONE { ua } else { ub };
        Union::Merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_union_of_two_users_is_refused_and_changes_nothing() {
        // nodes 0,1 anonymous; 2 = user A; 3 = user B
        let mut uf = UnionFind::new(vec![NONE, NONE, 0, 1]);
        assert_eq!(uf.union(0, 2), Union::Merged);
        assert_eq!(uf.union(1, 3), Union::Merged);
        assert_eq!(uf.union(0, 1), Union::Refused);
        assert_ne!(uf.find(0), uf.find(1));
        assert_eq!(uf.user_of(0), 0);
        assert_eq!(uf.user_of(1), 1);
        assert_eq!(uf.union(2, 0), Union::Same);
    }
}
